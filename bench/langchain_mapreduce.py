"""LangChain's map-reduce summarize chain on brief's cleaned articles, with a fake chat model that records prompts.

Runs in its own venv (bench/run.py makes one under ~/.cache/brief-bench/langchain, so LangChain
and its pins never enter the project's venv):

    python bench/langchain_mapreduce.py documents.json prompts.json

documents.json is `brief clean --json` output; prompts.json gets, per document, the text of every
prompt the chain sent. Chunks and the chain's own length checks use brief's tokenizer (cl100k_base
from pipeline/data, imported from the repository), 1,500-token chunks like brief's default, no
overlap. The fake model's reply mirrors the scripted model's map reply (a title-less summary and
three points), so the reduce prompts carry about what brief's merge prompts carry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_classic.chains.summarize import load_summarize_chain  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.language_models.chat_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langchain_text_splitters import RecursiveCharacterTextSplitter  # noqa: E402

from pipeline.ingest.tokens import count_tokens  # noqa: E402

CHUNK_TOKENS = 1500
REPLY = (
    "An English summary of the passage. First point in English, from the passage. "
    "Second point in English. Third point in English."
)


class RecordingChatModel(BaseChatModel):
    """A chat model that answers every prompt with REPLY and keeps the prompts it was sent."""

    prompts: list[list[str]] = []

    @property
    def _llm_type(self) -> str:
        return "recording-fake"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any) -> ChatResult:
        self.prompts.append([str(m.content) for m in messages])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=REPLY))])

    def get_num_tokens(self, text: str) -> int:  # the default loads GPT-2 from a hub: use ours
        return count_tokens(text)


def main() -> None:
    documents = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=0, length_function=count_tokens)
    result = []
    for doc in documents:
        model = RecordingChatModel(prompts=[])
        chain = load_summarize_chain(model, chain_type="map_reduce")
        chunks = [Document(page_content=text) for text in splitter.split_text(doc["text"])]
        chain.invoke({"input_documents": chunks})
        result.append({"id": doc["id"], "chunks": len(chunks), "prompts": model.prompts})
    Path(sys.argv[2]).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
