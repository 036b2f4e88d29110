"""opencode-api: an actor-based concurrent LLM agent runtime and REST/SSE API server.

Embedded use::

    from opencode_api import Runtime

    async with Runtime.open(database_url="sqlite:///x.db") as rt:
        session = await rt.create_session(title="demo")
        async for event in rt.send(session.id, "Hello", model="openai/gpt-4o-mini"):
            print(event.type, event)
"""

import os

# LiteLLM fetches its price map over the network at import unless told not to: no network at
# start-up, ever. Set before anything can import LiteLLM.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from opencode_api._version import __version__
from opencode_api.actors import Runtime, TurnEvent
from opencode_api.errors import OpenCodeError
from opencode_api.settings import Settings

__all__ = ["OpenCodeError", "Runtime", "Settings", "TurnEvent", "__version__"]
