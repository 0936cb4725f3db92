"""What differs by language, in one place: which tools apply to zh, ja, ko, en (and undetermined text)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LanguageProfile:
    code: str
    opencc: bool = False  # Traditional/Simplified conversion applies (never to Japanese kanji)
    dictionary: bool = False  # CC-CEDICT renderings and pinyin apply
    segmenter: bool = False  # jieba keyword segmentation (offline triage)
    unspaced: bool = False  # words are not separated by spaces (sentences measured in characters)


PROFILES: dict[str, LanguageProfile] = {
    "zh": LanguageProfile("zh", opencc=True, dictionary=True, segmenter=True, unspaced=True),
    "ja": LanguageProfile("ja", unspaced=True),
    "ko": LanguageProfile("ko"),
    "en": LanguageProfile("en"),
    "und": LanguageProfile("und"),
}


def profile(code: str) -> LanguageProfile:
    return PROFILES.get(code, PROFILES["und"])
