"""Declared licence strings -> SPDX licence expressions, or None when a string is not one.

Only identifiers of a fixed list of common SPDX licences are accepted; anything else (an
unknown identifier, free text such as "BSD-like", "GPL2") is not an expression and the SPDX
writer gives it a LicenseRef. Accepting too little only turns a valid identifier into a
LicenseRef; accepting too much would make the document invalid."""

from __future__ import annotations

import re

_LICENSES = """
0BSD AFL-2.1 AFL-3.0 AGPL-3.0-only AGPL-3.0-or-later Apache-1.1 Apache-2.0 APSL-2.0
Artistic-1.0 Artistic-1.0-Perl Artistic-2.0 Beerware BlueOak-1.0.0 BSD-1-Clause BSD-2-Clause
BSD-2-Clause-Patent BSD-3-Clause BSD-3-Clause-Clear BSD-4-Clause BSL-1.0 bzip2-1.0.6
CC-BY-3.0 CC-BY-4.0 CC-BY-SA-3.0 CC-BY-SA-4.0 CC0-1.0 CDDL-1.0 CDDL-1.1 CPL-1.0 curl
ECL-2.0 EPL-1.0 EPL-2.0 EUPL-1.1 EUPL-1.2 FSFAP FSFUL FSFULLR FTL GFDL-1.2-only
GFDL-1.2-or-later GFDL-1.3-only GFDL-1.3-or-later GPL-1.0-only GPL-1.0-or-later GPL-2.0-only
GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND ICU IJG ISC LGPL-2.0-only
LGPL-2.0-or-later LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only LGPL-3.0-or-later Libpng
libtiff MirOS MIT MIT-0 MIT-CMU MPL-1.1 MPL-2.0 MS-PL NCSA OFL-1.1 OpenSSL OLDAP-2.8 PHP-3.01
PostgreSQL PSF-2.0 Python-2.0 Python-2.0.1 Ruby Sleepycat Unicode-3.0 Unicode-DFS-2016
Unlicense UPL-1.0 Vim W3C WTFPL X11 Zlib ZPL-2.1
GPL-2.0 GPL-2.0+ GPL-3.0 GPL-3.0+ LGPL-2.0 LGPL-2.0+ LGPL-2.1 LGPL-2.1+ LGPL-3.0 LGPL-3.0+
AGPL-3.0 GFDL-1.3 GPL-1.0+
"""
_EXCEPTIONS = """
Autoconf-exception-2.0 Autoconf-exception-3.0 Bison-exception-2.2 Classpath-exception-2.0
GCC-exception-2.0 GCC-exception-3.1 LLVM-exception OpenJDK-assembly-exception-1.0
Qt-LGPL-exception-1.1 Universal-FOSS-exception-1.0 openvpn-openssl-exception
"""
LICENSE_IDS = {name.lower(): name for name in _LICENSES.split()}
EXCEPTION_IDS = {name.lower(): name for name in _EXCEPTIONS.split()}
_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9.+\-]+)")
_MAX_LENGTH = 1_000


def _tokens(text: str) -> list[str] | None:
    found: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            return None if text[position:].strip() else found
        found.append(match.group(1))
        position = match.end()
    return found


class _Parser:
    """expression := term ((AND|OR) term)*; term := '(' expression ')' | id ['WITH' exception]."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.position = 0
        self.out: list[str] = []

    def peek(self) -> str:
        return self.tokens[self.position] if self.position < len(self.tokens) else ""

    def take(self) -> str:
        token = self.peek()
        self.position += 1
        return token

    def expression(self, depth: int) -> bool:
        if depth > 20 or not self.term(depth):
            return False
        while self.peek().upper() in ("AND", "OR"):
            self.out.append(self.take().upper())
            if not self.term(depth):
                return False
        return True

    def term(self, depth: int) -> bool:
        token = self.take()
        if token == "(":
            self.out.append("(")
            if not self.expression(depth + 1) or self.take() != ")":
                return False
            self.out.append(")")
            return True
        canonical = LICENSE_IDS.get(token.lower())
        if canonical is None:
            return False
        self.out.append(canonical)
        if self.peek().upper() == "WITH":
            self.take()
            exception = EXCEPTION_IDS.get(self.take().lower())
            if exception is None:
                return False
            self.out.extend(("WITH", exception))
        return True


def spdx_expression(declared: str) -> str | None:
    """The declared licence as a canonical SPDX expression ("mit or apache-2.0" ->
    "MIT OR Apache-2.0"), or None when it is not one built from known identifiers."""
    text = declared.strip()
    if not text or len(text) > _MAX_LENGTH:
        return None
    tokens = _tokens(text)
    if not tokens:
        return None
    parser = _Parser(tokens)
    if not parser.expression(0) or parser.position != len(tokens):
        return None
    return " ".join(parser.out).replace("( ", "(").replace(" )", ")")
