"""Reads a Bot API request's parameters the ways clients send them: query string,
application/x-www-form-urlencoded (python-telegram-bot's usual form), multipart
(when a file is uploaded) and JSON bodies.

Kept free of extra dependencies (Starlette's own form parser needs
python-multipart), and small: the Bot API's parameters are flat.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from bot.emulator.botapi import UploadedFile, bad_request

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DISPOSITION_NAME = re.compile(r'\bname="([^"]*)"', re.IGNORECASE)
_DISPOSITION_FILENAME = re.compile(r'\bfilename="([^"]*)"', re.IGNORECASE)


async def read_parameters(request: Request) -> dict[str, Any]:
    """All parameters of a request, body over query string where both name one."""
    query = request.scope.get("query_string", b"")
    params: dict[str, Any] = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {}
    if request.method != "POST":
        return params
    body = await request.body()
    if not body:
        return params
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            decoded = json.loads(body)
        except ValueError:
            raise bad_request("can't parse JSON body") from None
        if not isinstance(decoded, dict):
            raise bad_request("a JSON body must be an object of parameters")
        params.update(decoded)
    elif content_type.startswith("multipart/form-data"):
        params.update(parse_multipart(body, content_type))
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("parameters must be UTF-8") from None
        params.update(parse_qsl(text, keep_blank_values=True))
    return params


def parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """Fields of a multipart/form-data body: text as str, files as UploadedFile."""
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise bad_request("multipart body without a boundary")
    delimiter = b"--" + found.group(1).encode("latin-1")
    fields: dict[str, Any] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            raise bad_request("malformed multipart body")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name_match = _DISPOSITION_NAME.search(disposition)
        if name_match is None:
            raise bad_request("multipart part without a name")
        filename = _DISPOSITION_FILENAME.search(disposition)
        if filename is not None:
            fields[name_match.group(1)] = UploadedFile(
                filename.group(1),
                headers.get("content-type", "application/octet-stream"),
                content,
            )
        else:
            fields[name_match.group(1)] = content.decode("utf-8", "replace")
    return fields
