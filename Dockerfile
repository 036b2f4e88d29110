# opencode-api as a container (works as a Hugging Face Docker Space: port 7860, user 1000).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    PORT=7860 \
    HOST=0.0.0.0
# No DATABASE_URL here: unset, the server uses SQLite in ./data/ (under the app folder), or the
# Supabase REST store when SUPABASE_URL and SUPABASE_KEY are set, as the replaced service did.

# Hugging Face Spaces run containers as uid 1000.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

COPY --chown=user setup.cfg pyproject.toml README.md ./
COPY --chown=user src ./src
RUN pip install ".[postgres,supabase,fast]"

RUN mkdir -p /home/user/app/data && chown -R user:user /home/user/app
USER user
EXPOSE 7860

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '7860'), timeout=4)"

CMD ["opencode-api", "serve"]
