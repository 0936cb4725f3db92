"""Briefing: foreign-language news in, English summaries, glossaries and a briefing out."""

__all__: list[str] = []
