"""The ``question`` tool: ask the user and wait (through the session's control lane) for a reply."""

from __future__ import annotations

from pydantic import BaseModel, Field

from opencode_api.store import QuestionItem, QuestionOption
from opencode_api.tools._base import QuestionRejected, Tool, ToolContext, ToolOutput

DESCRIPTION = """\
Asks the user one or more questions and waits for the answers. Use it when you need to:
1. Gather the user's preferences or requirements.
2. Clarify ambiguous instructions.
3. Get decisions on implementation choices as you work.
4. Offer the user choices about which direction to take.

Usage notes:
- Ask only what you cannot reasonably decide or find out yourself; group related questions into \
one call instead of asking one at a time.
- Each question has the full question text, a very short header (at most 30 characters) and \
options, each with a concise label (1 to 5 words) and a description of what choosing it means.
- Set multiple: true when more than one option may be chosen.
- If you recommend an option, put it first and add "(Recommended)" at the end of its label.
- Answers come back as the labels chosen (or the user's own text). The user may not answer \
(the question times out) or may dismiss it: then continue with your best judgment."""

REJECTED_TEXT = (
    "The user dismissed this question. Continue without this information, "
    "or proceed with your best judgment."
)
UNANSWERED_TEXT = (
    "The user did not answer the questions before they timed out. Continue without this "
    "information, or proceed with your best judgment."
)


class QuestionOptionParam(BaseModel):
    label: str = Field(description="Display text (1-5 words, concise)")
    description: str = Field(description="Explanation of choice")


class QuestionParam(BaseModel):
    question: str = Field(description="Complete question")
    header: str = Field(max_length=30, description="Very short label (max 30 chars)")
    options: list[QuestionOptionParam] = Field(description="Available choices")
    multiple: bool | None = Field(default=None, description="Allow selecting multiple choices")


class QuestionParams(BaseModel):
    questions: list[QuestionParam] = Field(min_length=1, description="Questions to ask")


def format_answers(questions: list[QuestionItem], answers: list[list[str]]) -> str:
    pairs = []
    for index, item in enumerate(questions):
        answer = answers[index] if index < len(answers) else []
        pairs.append(f'"{item.question}"="{", ".join(answer) if answer else "Unanswered"}"')
    return (
        f"User has answered your questions: {', '.join(pairs)}. "
        "You can now continue with the user's answers in mind."
    )


class QuestionTool(Tool[QuestionParams]):
    name = "question"
    description = DESCRIPTION
    params = QuestionParams

    def __init__(self, question_timeout: float = 300.0) -> None:
        # The session actor resolves an unanswered question after ``question_timeout`` (ask()
        # returns None); the tool's own timeout is only a backstop behind it.
        self._timeout = question_timeout + 30.0

    def timeout_for(self, params: QuestionParams) -> float:
        return self._timeout

    async def run(self, params: QuestionParams, ctx: ToolContext) -> ToolOutput:
        items = [
            QuestionItem(
                question=q.question,
                header=q.header,
                options=[
                    QuestionOption(label=o.label, description=o.description) for o in q.options
                ],
                multiple=bool(q.multiple),
            )
            for q in params.questions
        ]
        count = len(items)
        title = f"Asked {count} question{'s' if count > 1 else ''}"
        try:
            answers = await ctx.ask(items)
        except QuestionRejected:
            return ToolOutput(text=REJECTED_TEXT, title=title, metadata={"status": "rejected"})
        if answers is None:
            return ToolOutput(text=UNANSWERED_TEXT, title=title, metadata={"status": "expired"})
        return ToolOutput(
            text=format_answers(items, answers),
            title=title,
            metadata={"status": "answered", "answers": answers},
        )
