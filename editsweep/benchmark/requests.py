"""Edit requests: one per reliability problem, built from its rewritten solution.

Templates (the build option `template`):

- `code_context` (default): `prompt` is the problem prompt plus the rewritten solution up to
  the first call site of the new API; `target_new` is the new call as written there and
  `ground_truth` the original call at the same site. The key is the prompt's last token
  (`key_position: last`), the point where the model chooses what to write; `subject` is the
  code on the prompt's last line (`match =`, `return`), or its last word when that line is
  blank — a substring that ends the prompt, which ROME-style editors need; where it occurs
  more than once, the last occurrence is meant.
  Default because it matches what is evaluated: a model completing a function body. The
  edit is taught in the same form in which reliability is measured.
- `statement`: a natural-language fact in a code comment, ``# re.search is deprecated; use``,
  with `target_new` the new call and `ground_truth` the old one, both from the problem's call
  site; the subject is the old API name (`key_position: subject_last`), the classic
  ROME/MEMIT subject-relation-object form.

Token budget: the code context is truncated from the left at line boundaries to at most
`max_prompt_chars` characters (the end, which holds the subject and the call site, is kept).
Characters are the budget unit because the benchmark is built without any model's tokenizer;
code tokenizes to roughly 3-4 characters per token on the three 7B models.
"""

from __future__ import annotations

from dataclasses import dataclass

from editsweep.benchmark.rewriter import CallSite

TEMPLATES = ("code_context", "statement")
DEFAULT_TEMPLATE = "code_context"
DEFAULT_MAX_PROMPT_CHARS = 1200


@dataclass(frozen=True)
class EditRequest:
    prompt: str
    target_new: str
    ground_truth: str
    subject: str
    key_position: str
    template: str

    def to_dict(self) -> dict:
        return {
            "prompt": self.prompt,
            "target_new": self.target_new,
            "ground_truth": self.ground_truth,
            "subject": self.subject,
            "key_position": self.key_position,
            "template": self.template,
        }


def truncate_left(text: str, max_chars: int) -> str:
    """The longest tail of `text` that starts at a line boundary and fits in `max_chars`."""
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    newline = tail.find("\n")
    if newline == -1 or newline == len(tail) - 1:
        return tail  # one very long line: cut inside it
    return tail[newline + 1:]


def context_subject(context: str) -> str:
    """The code on the context's last line, or its last word when that line is blank."""
    last_line = context.rsplit("\n", 1)[-1].strip()
    if last_line:
        return last_line
    words = context.split()
    if not words:
        raise ValueError("the code context is empty")
    return words[-1]


def code_context_request(prompt: str, reference_new: str, site: CallSite, max_prompt_chars: int) -> EditRequest:
    context = truncate_left(prompt + reference_new[: site.new_start], max_prompt_chars)
    subject = context_subject(context)
    return EditRequest(
        prompt=context,
        target_new=site.new_text,
        ground_truth=site.old_text,
        subject=subject,
        key_position="last",
        template="code_context",
    )


def statement_request(api: str, site: CallSite) -> EditRequest:
    return EditRequest(
        prompt=f"# {api} is deprecated; use",
        target_new=" " + site.new_text,
        ground_truth=" " + site.old_text,
        subject=api,
        key_position="subject_last",
        template="statement",
    )


def make_request(
    template: str, api: str, prompt: str, reference_new: str, site: CallSite, max_prompt_chars: int
) -> EditRequest:
    if template == "code_context":
        request = code_context_request(prompt, reference_new, site, max_prompt_chars)
    elif template == "statement":
        request = statement_request(api, site)
    else:
        raise ValueError(f"unknown edit request template {template!r}; expected one of {TEMPLATES}")
    if request.subject not in request.prompt:
        raise ValueError(f"subject {request.subject!r} is not in the prompt")
    return request
