"""What the model sees for a benchmark problem, and where its completion ends.

Every benchmark record is in HumanEval form (docs/architecture.md): `prompt` is the code up to
the body of the entry-point function — imports, helpers, the `def` line and a docstring — and
`prompt + reference` is the solution. A completion is therefore a function body, for every
source, and the same stop rules apply to all.

Prompt styles (`format_prompt(record, style)`):
- "raw": `record["prompt"]` unchanged. Default for HumanEval and the demo set. For MBPP the
  benchmark builder's prompt already holds the task text and the first test as the docstring.
- "tests_docstring": the record prompt with its test assertions listed in the docstring
  (those not already shown), i.e. the MBPP task text with its tests as a docstring, as in the
  MBPP paper's prompt, which shows all three tests. Default for MBPP.
- "task_docstring": the record prompt with the docstring reduced to `task_text` alone (no
  examples), for ablations.

The rendered prompt only adds or removes docstring lines of the entry-point function, so the
program to execute is always `format_prompt(record, style) + completion` — the cell must use the
rendered prompt, not `record["prompt"]`, when it assembles the sandbox program.

Stop rules (`stop_strings(source)`, `stop_rule(source, cfg)`): a completion ends before a new
top-level `def `, `class `, `if __name__`, `print(` or `assert ` (stop_mode "strings"), or before
the first line that starts in column 0 (stop_mode "dedent"), or only at EOS ("none").
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from editsweep.generation.stopping import NO_STOP, StopRule

__all__ = [
    "PROMPT_STYLES",
    "DEFAULT_STYLES",
    "STOP_STRINGS",
    "format_prompt",
    "stop_strings",
    "stop_rule",
    "style_for",
    "prepare",
]

PROMPT_STYLES = ("raw", "tests_docstring", "task_docstring")
DEFAULT_STYLES = {"humaneval": "raw", "demo": "raw", "mbpp": "tests_docstring"}

_FUNCTION_BODY_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\nassert ")
STOP_STRINGS: dict[str, tuple[str, ...]] = {
    "humaneval": _FUNCTION_BODY_STOPS,
    "mbpp": _FUNCTION_BODY_STOPS,
    "demo": _FUNCTION_BODY_STOPS,
}


def stop_strings(source: str) -> list[str]:
    """The stop strings of prompts from `source` (a completion is a function body)."""
    if source not in STOP_STRINGS:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(STOP_STRINGS)}")
    return list(STOP_STRINGS[source])


def stop_rule(source: str, cfg: Any = None) -> StopRule:
    """The stop rule for `source` under a GenerationConfig-like `cfg` (stop_mode, stop_strings)."""
    mode = getattr(cfg, "stop_mode", "strings") if cfg is not None else "strings"
    override = getattr(cfg, "stop_strings", None) if cfg is not None else None
    if mode == "none":
        return NO_STOP
    if mode == "dedent":
        return StopRule(tuple(override or ()), dedent=True)
    if mode == "strings":
        return StopRule(tuple(override) if override else tuple(stop_strings(source)))
    raise ValueError(f"unknown stop_mode {mode!r}; expected strings, dedent or none")


def style_for(source: str, styles: Mapping[str, str] | None = None) -> str:
    """The prompt style of `source`: `styles[source]` if given, else DEFAULT_STYLES."""
    chosen = (styles or {}).get(source, DEFAULT_STYLES.get(source, "raw"))
    if chosen not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {chosen!r} for source {source!r}; known: {', '.join(PROMPT_STYLES)}")
    return chosen


def _record_field(record: Mapping[str, Any], key: str) -> Any:
    if key not in record:
        raise KeyError(f"benchmark record {record.get('id', '?')!r} has no {key!r} field")
    return record[key]


def _docstring_span(prompt: str, record_id: str) -> tuple[int, int, str, str]:
    """(start of docstring text, start of closing quotes line, quote, indent) of the prompt's final docstring."""
    body = prompt.rstrip()
    for quote in ('"""', "'''"):
        if body.endswith(quote):
            close = len(body) - len(quote)
            opening = body.rfind(quote, 0, close)
            if opening == -1:
                continue
            line_start = body.rfind("\n", 0, close) + 1
            before_close = body[line_start:close]
            indent_line = prompt[prompt.rfind("\n", 0, opening) + 1 : opening]
            indent = indent_line if not indent_line.strip() else ""
            # the closing quotes may share the last text line or stand on their own line
            close_line = line_start if not before_close.strip() else close
            return opening + len(quote), close_line, quote, indent
    raise ValueError(f"record {record_id!r}: its prompt does not end with a docstring, so tests cannot be added to it")


def _escape(text: str, quote: str) -> str:
    return text.replace("\\", "\\\\").replace(quote, "\\" + "\\".join(quote))


def _test_lines(record: Mapping[str, Any]) -> list[str]:
    entry = record.get("entry_point") or ""
    lines = []
    for unit in _record_field(record, "tests"):
        text = unit.strip()
        if text.startswith("assert") and (not entry or entry in text or "candidate" in text):
            lines.append(text)
    return lines


def format_prompt(record: Mapping[str, Any], style: str = "raw") -> str:
    """The prompt text for a benchmark record in `style` (see the module docstring)."""
    prompt = _record_field(record, "prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"record {record.get('id', '?')!r} has an empty prompt")
    if style == "raw":
        return prompt
    record_id = record.get("id", "?")
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}; known: {', '.join(PROMPT_STYLES)}")
    text_start, close_line, quote, indent = _docstring_span(prompt, record_id)
    if style == "tests_docstring":
        shown = prompt[text_start:close_line]
        extra = [line for line in _test_lines(record) if line not in shown and _escape(line, quote) not in shown]
        if not extra:
            return prompt
        listed = f"{indent}Tests:\n" + "".join(f"{indent}{_escape(line, quote)}\n" for line in extra)
        if prompt[close_line:close_line + len(quote)] == quote and close_line > 0 and prompt[close_line - 1] != "\n":
            # closing quotes on the last text line: put them on their own line after the tests
            return prompt[:close_line] + "\n" + listed + indent + prompt[close_line:]
        return prompt[:close_line] + listed + prompt[close_line:]
    # task_docstring
    task = record.get("task_text")
    if not task or not str(task).strip():
        raise ValueError(f"record {record_id!r} has no task_text; style 'task_docstring' needs it")
    tail = prompt[len(prompt.rstrip()):]
    return prompt[:text_start] + _escape(str(task).strip(), quote) + f"\n{indent}{quote}" + (tail or "\n")


def prepare(
    records: Sequence[Mapping[str, Any]], cfg: Any = None
) -> tuple[list[str], list[StopRule]]:
    """Rendered prompts and stop rules for records, per their source and `cfg.prompt_styles`."""
    styles = getattr(cfg, "prompt_styles", None) if cfg is not None else None
    prompts, rules = [], []
    for record in records:
        source = _record_field(record, "source")
        prompts.append(format_prompt(record, style_for(source, styles)))
        rules.append(stop_rule(source, cfg))
    return prompts, rules
