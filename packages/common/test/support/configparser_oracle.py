"""Python's own configparser, as the oracle for test/config/ini.test.ts.

Reads a JSON array of INI texts on stdin and prints a JSON array with, for
each text, either {"error": kind} or {"sections": {name: {key: value}},
"defaults": {key: value}}, the values interpolated as a default
ConfigParser() gives them. Each section's items include the DEFAULT keys, as
cp.items(section) does. Standard library only: CI has a bare python3.
"""

import configparser
import io
import json
import sys

# Most specific first: MissingSectionHeaderError is a ParsingError.
ERROR_KINDS = (
    (configparser.DuplicateSectionError, "duplicate_section"),
    (configparser.DuplicateOptionError, "duplicate_option"),
    (configparser.MissingSectionHeaderError, "missing_section_header"),
    (configparser.ParsingError, "parse"),
    (configparser.InterpolationMissingOptionError, "interpolation_missing"),
    (configparser.InterpolationSyntaxError, "interpolation_syntax"),
    (configparser.InterpolationDepthError, "interpolation_depth"),
)


def outcome(text):
    cp = configparser.ConfigParser()
    try:
        # newline=None gives universal newlines (\n, \r\n and \r), as when
        # ConfigParser.read() opens a file; read_string() would not split on \r.
        cp.read_file(io.StringIO(text, newline=None), source="<case>")
        # Interpolation errors are raised when a value is read; DEFAULT is read
        # first, then the sections in file order (the test reads in that order).
        defaults = dict(cp.items(cp.default_section))
        sections = {name: dict(cp.items(name)) for name in cp.sections()}
    except configparser.Error as err:
        for cls, kind in ERROR_KINDS:
            if isinstance(err, cls):
                return {"error": kind}
        raise
    return {"sections": sections, "defaults": defaults}


def main():
    texts = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    json.dump([outcome(text) for text in texts], sys.stdout)


if __name__ == "__main__":
    main()
