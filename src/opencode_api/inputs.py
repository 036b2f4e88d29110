"""What a user message may carry besides its text (API.md "Richer input and output"): input
parts (text and files) and the answer's required format. A leaf module: http/ validates requests
with these models, actors/ carry them to the turn, llm/ turns them into each provider's shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TextInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str = Field(min_length=1)


class FileInput(BaseModel):
    """A file: an image (png, jpeg, gif, webp) or a PDF, by https URL or as a ``data:`` URI."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["file"]
    mime: str = Field(min_length=1, max_length=255)
    url: str | None = Field(default=None, description="An https URL.")
    data: str | None = Field(default=None, description="A data: URI (base64).")
    filename: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _one_source(self) -> FileInput:
        if (self.url is None) == (self.data is None):
            raise ValueError("a file part needs exactly one of url and data")
        return self


InputPart = Annotated[TextInput | FileInput, Field(discriminator="type")]


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    json_schema: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None

    @field_validator("json_schema")
    @classmethod
    def _is_a_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import validators  # ~50 ms to import: only when a schema comes
        from jsonschema.exceptions import SchemaError

        try:
            validators.validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a JSON schema: {exc.message}") from None
        return schema


class ResponseFormat(BaseModel):
    """``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {...}}``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError('json_schema is required with type "json_schema", and only then')
        return self
