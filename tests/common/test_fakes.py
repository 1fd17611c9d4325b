"""The fake OpenAI server speaks the protocol the real ``openai`` client expects."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_server import FakeOpenAI, Reply


async def test_real_openai_client_gets_scripted_content_and_errors() -> None:
    fake = FakeOpenAI(responder=lambda body: Reply(content="hello " + body["model"]))
    fake.script(Reply(status=429, headers={"retry-after": "0"}))
    with fake.serve() as base_url:
        client = AsyncOpenAI(base_url=base_url, api_key="k", max_retries=1)
        answer = await client.chat.completions.create(
            model="m1", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == "hello m1"
        assert answer.usage is not None and answer.usage.prompt_tokens >= 1
        assert fake.calls == 2  # the 429 was retried once by the client

        fake.script(Reply(status=500), Reply(status=500))
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(
                model="m1", messages=[{"role": "user", "content": "hi"}]
            )
        await client.close()
