"""Validating documents with spdx-tools (tests only: polybuild never imports it)."""

from __future__ import annotations

import json

from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document


def validation_errors(document: dict[str, object]) -> list[str]:
    """spdx-tools' messages for the document as it would be written (through json)."""
    parsed = JsonLikeDictParser().parse(json.loads(json.dumps(document)))
    return [
        message.validation_message for message in validate_full_spdx_document(parsed, "SPDX-2.3")
    ]
