#!/usr/bin/env python3
"""Reads Prometheus text from stdin with prometheus_client's parser (Debian's
python3-prometheus-client) and prints what it found as JSON:
{"families": {name: type}, "samples": [{"name", "labels", "value"}]}.
Exits 1 with the parser's message if the text is not valid."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    text = sys.stdin.read()
    families = {}
    samples = []
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for s in family.samples:
            samples.append({"name": s.name, "labels": s.labels, "value": s.value})
except Exception as e:  # the parser raises ValueError and others on bad input
    print(f"not valid Prometheus text: {e}", file=sys.stderr)
    sys.exit(1)
json.dump({"families": families, "samples": samples}, sys.stdout)
