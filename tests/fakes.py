"""Deterministic stand-ins for the model and the embedder, reached through the real code paths.

``FakeProvider`` is registered with LiteLLM as the custom provider ``fake``, so tests drive the same
``litellm.acompletion`` call the hosted models use. It answers a facet prompt with a summary made from the
conversation's first user line, so equal conversations get equal answers. It picks each answer by the step
that asked (the LLM layer passes ``LLMTask.key_parts["step"]`` with the call), not by the prompt's wording.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

import litellm
import numpy as np
from litellm import CustomLLM, ModelResponse
from litellm.types.utils import Choices, Message, Usage


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{5,}", text.lower())} - {"user's", "overall", "request", "assistant",
                                                                   "users", "asked"}


def _judge_answer(prompt: str) -> str:
    """Fit: Yes when the item shares a word of 5+ letters with the group; best: the group sharing most words."""
    last = prompt.rsplit("\nItem: ", 1)[1]
    item, rest = last.split("\n", 1)
    if "Belongs:" in last:
        group = rest.split("Group:", 1)[1]
        return " Yes\n" if _words(item) & _words(group) else " No\n"
    groups = re.findall(r"^([A-Z])\. (.+)$", rest, flags=re.M)
    best = max(groups, key=lambda g: len(_words(item) & _words(g[1])))
    return f" {best[0]}\n"


class FakeProvider(CustomLLM):
    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.prompts: list[str] = []
        self.steps: list[str] = []         # the step each call came from
        self.fail_first: int = 0          # raise RateLimitError for this many calls
        self.garbage_first: int = 0       # answer with unusable text for this many calls
        self.vary_garbage: bool = False   # that text differs from call to call (else always "x")
        self.drop_name_first: int = 0     # write a naming answer's description but stop before its Name: line
        self.leak_first: int = 0          # put a personal e-mail address into this many answers
        self.low_audit_first: int = 0     # rate this many harmless clusters 2 (an auditor's false alarm)
        self.delay: float = 0.0           # seconds per call
        self.in_flight = 0
        self.max_in_flight = 0

    def _answer(self, prompt: str, step: str) -> str:
        """The answer for one call, chosen by the step that asked (LLMTask.key_parts["step"], and the facet for
        facet calls), which the LLM layer sends with each call; the prompt is read only for the item's content.
        A step the fake does not know is an error, so a new step cannot silently get another step's answer."""
        if step in ("facet:language",):
            return " English.\n"
        if step == "facet:concerning":
            return " 2\n"
        if step in ("judge_fit", "judge_best"):
            return _judge_answer(prompt)
        if step == "judge_distinct":
            last = prompt.rsplit("Group 1:", 1)[1]
            one, two = last.split("Group 2:", 1)
            return " Same\n" if one.split(".")[0].strip() == two.split(".")[0].strip() else " Different\n"
        if step == "synthetic_rewrite":
            message = prompt.rsplit("\nMessage: ", 1)[1].split("\nKeep:", 1)[0]
            if re.search(r"Python|SQL|CSS|Excel|React|pandas", message):  # answers about something else
                return " I need help with some code that keeps crashing.\n"
            return f" ok so basically: {message.lower()[:1]}{message[1:]}\n"
        if step == "screen":  # yes when the conversation shares a word of four letters or more with the question
            last = prompt.rsplit("Conversation:\n", 1)[1]
            convo, question = last.rsplit("\nQuestion: ", 1)
            if "unanswerable" in convo:
                return " Perhaps\n"
            common = {w for w in re.findall(r"[a-z]{4,}", question.lower()) if w not in {"this", "conversation", "about"}}
            return " Yes\n" if common & set(re.findall(r"[a-z]{4,}", convo.lower())) else " No\n"
        if step == "privacy_audit":
            last = prompt.rsplit("Group name:", 1)[1]
            if "@" in last or "Secret" in last or re.search(r"\d{3}", last):
                return " 1\nReason: It names one person and how to reach them.\n"
            if "Clinic" in last:
                return " 2\nReason: It names one business.\n"
            if self.low_audit_first > 0:
                self.low_audit_first -= 1
                return " 2\nReason: It might point to a small group.\n"
            return " 5\nReason: A general topic with nothing identifying.\n"
        if step == "hierarchy_propose":  # step c: one category per leading word pair
            last = prompt.rsplit("\nClusters:\n", 1)[1]
            high = int(re.search(r"Number of categories: \d+ to (\d+)", last).group(1))
            names = re.findall(r"^- (.+)$", last.split("Nearby clusters", 1)[0], flags=re.M)
            # a "<Domain> help:" description names the domain; otherwise the name's last own word
            filler = {"handle", "help", "with", "and", "related", "requests"}
            heads = list(dict.fromkeys((n.split(": ", 1)[1].split()[0] if " help: " in n else
                                        ([w for w in n.split(":")[0].split() if w.lower() not in filler]
                                         or ["other"])[-1]).lower() for n in names))[:high]
            return "\n" + "\n".join(f"- Handle {h} requests" for h in heads) + "\n"
        if step == "hierarchy_assign":  # step e: the category sharing most words with the cluster
            last = prompt.rsplit("\nCategories:\n", 1)[1]
            cats = re.findall(r"^- (.+)$", last, flags=re.M)
            item = set(re.findall(r"[a-z]+", last.split("Cluster:", 1)[1].lower()))
            best = max(cats, key=lambda c: len(item & set(re.findall(r"[a-z]+", c.lower()))))
            return f" {best}\n"
        if step in ("hierarchy_rename", "name_clusters") and prompt.rstrip().endswith("Name:"):
            return " Repaired name for the group\n"  # a re-ask with the description pre-filled: the name only
        if step == "hierarchy_rename":  # step f
            group = prompt.rsplit("Clusters in the category:\n", 1)[1]
            first = group.split("\n", 1)[0].removeprefix("- ").split(":")[0]
            words = re.findall(r"[A-Za-z]+", first)[:5]
            return (f" The users asked about {first.lower()} and related topics. They wanted general help.\n"
                    f"Name: Handle {' '.join(words).lower()} and related requests\n")
        if step == "name_clusters":  # describe the last group's first request
            group = prompt.rsplit("Requests in the group:\n", 1)[1]
            first = group.split("\n", 1)[0].removeprefix("- ").rstrip(".")
            words = re.findall(r"[A-Za-z]+", first)[:6]
            return (f" The users asked to {first}. They wanted practical, step by step help.\n"
                    f"Name: {' '.join(words).capitalize()}\n")
        if step.startswith("facet:") or step == "test":  # a summary from the last conversation's first line
            convs = re.findall(r"Conversation:\n(.*?)\n\nQuestion:", prompt, flags=re.S)
            last = convs[-1] if convs else prompt
            first = last.split("\n", 1)[0].removeprefix("User: ")
            words = re.findall(r"[A-Za-z]+", first.lower())[:8]
            return " " + ("help with " + " ".join(words) if words else "help with something") + ".\n"
        raise ValueError(f"the fake model has no answer for step {step!r}")

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        self.calls += 1
        prompt = "".join(m["content"] for m in messages)
        self.prompts.append(prompt)
        step = ((kwargs.get("litellm_params") or {}).get("metadata") or {}).get("clio_lab_step", "")
        self.steps.append(step)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise litellm.RateLimitError("slow down", llm_provider="fake", model=model)
        if self.delay:
            time.sleep(self.delay)
        garbage = f"x{self.calls}" if self.vary_garbage else "x"
        text = garbage if self.garbage_first > 0 else self._answer(prompt, step)
        if self.leak_first > 0 and text.strip() and not text.strip()[0].isdigit():
            self.leak_first -= 1
            first, _, rest = text.partition("\n")
            text = first.rstrip(".") + " for dana.whitfield@example.com." + ("\n" + rest if rest else "")
        if self.drop_name_first > 0 and "\nName:" in text:
            self.drop_name_first -= 1
            text = text.split("\nName:")[0] + "\n"
        self.garbage_first = max(0, self.garbage_first - 1)
        return ModelResponse(model=model, choices=[Choices(index=0, finish_reason="stop",
                                                           message=Message(role="assistant", content=text))],
                             usage=Usage(prompt_tokens=len(prompt) // 4, completion_tokens=len(text) // 4,
                                         total_tokens=len(prompt) // 4 + len(text) // 4))

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
                saved, self.delay = self.delay, 0.0
                try:
                    return self.completion(model, messages, *args, **kwargs)
                finally:
                    self.delay = saved
            return self.completion(model, messages, *args, **kwargs)
        finally:
            self.in_flight -= 1


FAKE = FakeProvider()


def register_fake() -> FakeProvider:
    litellm.custom_provider_map = [m for m in litellm.custom_provider_map if m.get("provider") != "fake"] + [
        {"provider": "fake", "custom_handler": FAKE}]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
    FAKE.reset()
    return FAKE


@dataclass
class FakeEmbedder:
    """Bag of hashed words, L2-normalised: texts that share words lie close."""

    dim: int = 64
    calls: int = field(default=0, compare=False)

    def get_params(self) -> dict[str, Any]:
        return {"kind": "fake", "dim": self.dim}

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        out += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)
