"""A scripted "model" for the fake server: plausible replies to brief's map, reduce and briefing prompts.

It reads the request like a model would (the delimited article, the parts, the articles) and
answers with JSON shaped by the prompt. It also misbehaves on purpose in ways the glossary rules
must catch: a term that is not in the article, and terms given in the other script.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# Terms the scripted model "recognises" when they occur in an article, with its renderings.
KNOWN_TERMS: dict[str, tuple[str, str]] = {
    "DeepSeek": ("DeepSeek", "product"),
    "OpenAI": ("OpenAI", "organisation"),
    "阿里巴巴": ("Alibaba", "organisation"),
    "通義千問": ("Tongyi Qianwen", "product"),
    "英偉達": ("Nvidia", "organisation"),
    "黃仁勳": ("Jensen Huang", "person"),
    "硅谷": ("Silicon Valley", "place"),
    "朱雀三號": ("Zhuque-3", "product"),
    "华尔街日报": ("The Wall Street Journal", "organisation"),
}
# Returned for every article: never in any article, so it must always be dropped.
INVENTED_TERM = {"source": "不存在的公司", "target": "Nonexistent Corp", "kind": "organisation"}
# Given in Simplified even when the article is Traditional, to exercise script merging.
SIMPLIFIED_ALIASES = {"通義千問": "通义千问", "華爾街日報": "华尔街日报"}


def _user_text(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def _between(text: str, tag: str) -> str:
    match = re.search(rf"<{tag}>\n(.*)\n</{tag}>", text, re.DOTALL)
    return match.group(1) if match else ""


def prompt_kind(body: dict[str, Any]) -> str:
    """Tell which prompt a request carries, from its delimiters."""
    text = _user_text(body)
    for kind, tag in (("repair", "draft"), ("map", "article"), ("reduce", "parts"), ("briefing", "articles")):
        if f"<{tag}>" in text:
            return kind
    return "other"  # not one of brief's prompts (doctor's ping, the schema probe)


def passage_tag(text: str) -> str:
    """A digit-free name for a passage (its hash in letters), so replies carry no figure the source lacks."""
    return "".join(chr(ord("a") + int(c, 16)) for c in hashlib.sha1(text.encode("utf-8")).hexdigest()[:8])


def map_reply(article: str) -> dict[str, Any]:
    glossary = []
    for source, (target, kind) in KNOWN_TERMS.items():
        forms = {source} | {t for t, s in SIMPLIFIED_ALIASES.items() if s == source}
        if any(form in article for form in forms):
            glossary.append({"source": SIMPLIFIED_ALIASES.get(source, source), "target": target, "kind": kind})
    glossary.append(INVENTED_TERM)
    tag = passage_tag(article)
    return {
        "title": f"Report {tag}",
        "summary": f"An English summary of passage {tag}.",
        # Points differ between passages, as a real model's would: a merge must not read as a loop.
        "key_points": [
            # No ordinals ("third"): the number check would rightly ask where the source says so.
            f"Opening point in English, from passage {tag}.",
            "Another point in English.",
            "A further point in English.",
        ],
        "glossary": glossary,
    }


def reduce_reply(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": parts[0]["title"],
        "summary": "Merged English summary of several parts.",
        "key_points": [p["key_points"][0] for p in parts][:7] + ["Merged point."] * max(0, 3 - len(parts)),
    }


def briefing_reply(articles: list[dict[str, Any]]) -> dict[str, Any]:
    ids = [a["id"] for a in articles]
    return {
        "overview": f"Overview of {len(ids)} articles in English.",
        "groups": [{"label": "All coverage", "articles": ids}],
    }


def scripted_model(body: dict[str, Any]) -> str:
    """Answer one chat-completions request body with the JSON content a good model would give."""
    text = _user_text(body)
    kind = prompt_kind(body)
    if kind == "repair":  # a model that changes nothing: the checks must then tell the reader
        reply = json.loads(_between(text, "draft"))
    elif kind == "map":
        reply = map_reply(_between(text, "article"))
    elif kind == "reduce":
        reply = reduce_reply(json.loads(_between(text, "parts")))
    elif kind == "briefing":
        reply = briefing_reply(json.loads(_between(text, "articles")))
    else:
        raise ValueError("not one of brief's prompts")
    return json.dumps(reply, ensure_ascii=False)
