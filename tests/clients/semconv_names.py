"""Exits non-zero naming every argument that is not an attribute or metric name of the OpenTelemetry
semantic conventions as the official `opentelemetry-semantic-conventions` package spells them (stable and
incubating, GenAI and MCP included)."""

import importlib
import pkgutil
import sys

import opentelemetry.semconv._incubating.attributes as incubating
import opentelemetry.semconv._incubating.metrics as incubating_metrics
import opentelemetry.semconv.attributes as stable


def names(package):
    found = set()
    for module in pkgutil.iter_modules(package.__path__):
        for key, value in vars(importlib.import_module(f"{package.__name__}.{module.name}")).items():
            if key.isupper() and isinstance(value, str):
                found.add(value)
    return found


known = names(incubating) | names(stable) | names(incubating_metrics)
unknown = [name for name in sys.argv[1:] if name not in known]
if unknown:
    sys.exit(f"not in the semantic conventions: {', '.join(unknown)}")
print(f"{len(sys.argv) - 1} names checked")
