"""Per-item fallback across a tenant's providers, and building the chain by name."""

import asyncio

import pytest

from imagegen.worker.providers import base, chain, openai, registry

REQUEST = base.GenerationRequest(prompt="a lighthouse at dawn", seed=7, width=64, height=64)


class FakeProvider:
    """A test double of our own Provider interface: succeeds, or raises what it is given."""

    def __init__(self, *, name: str, error: Exception | None = None) -> None:
        self.name = name
        self.error = error
        self.calls = 0
        self.closed = False

    async def generate(self, *, request: base.GenerationRequest) -> base.GeneratedImage:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return base.GeneratedImage(
            data=self.name.encode(),
            content_type="image/png",
            provider=self.name,
            width=request.width,
            height=request.height,
        )

    async def aclose(self) -> None:
        self.closed = True


def failing(name: str, *, retryable: bool) -> FakeProvider:
    return FakeProvider(name=name, error=base.ProviderError(f"{name} is down", retryable=retryable))


async def test_the_first_provider_that_succeeds_makes_the_image() -> None:
    first, second = FakeProvider(name="a"), FakeProvider(name="b")
    outcome = await chain.ProviderChain(providers=[first, second]).generate(request=REQUEST)
    assert (outcome.provider, outcome.image.data, outcome.failures) == ("a", b"a", ())
    assert second.calls == 0


async def test_an_error_falls_back_to_the_next_provider_and_is_recorded() -> None:
    providers = [failing("a", retryable=False), FakeProvider(name="b")]
    outcome = await chain.ProviderChain(providers=providers).generate(request=REQUEST)
    assert outcome.provider == "b"
    assert outcome.image.provider == "b"
    assert outcome.failures == (chain.Failure(provider="a", message="a is down", retryable=False),)


async def test_when_all_fail_the_error_lists_each_provider() -> None:
    providers = [failing("a", retryable=False), failing("b", retryable=False)]
    with pytest.raises(base.ProviderError) as error:
        await chain.ProviderChain(providers=providers).generate(request=REQUEST)
    assert error.value.message == "all providers failed: a: a is down; b: b is down"
    assert not error.value.retryable


async def test_when_all_fail_the_item_is_retryable_if_any_failure_was() -> None:
    providers = [failing("a", retryable=False), failing("b", retryable=True)]
    with pytest.raises(base.ProviderError) as error:
        await chain.ProviderChain(providers=providers).generate(request=REQUEST)
    assert error.value.retryable


async def test_the_items_own_provider_is_tried_first_then_the_rest_in_order() -> None:
    providers = [failing("a", retryable=True), failing("b", retryable=True), FakeProvider(name="c")]
    outcome = await chain.ProviderChain(providers=providers).generate(
        request=REQUEST, preferred="b"
    )
    assert [failure.provider for failure in outcome.failures] == ["b", "a"]
    assert outcome.provider == "c"


async def test_a_preferred_provider_the_tenant_has_not_enabled_is_refused() -> None:
    providers = [FakeProvider(name="local")]
    with pytest.raises(base.ProviderError, match=r"'openai' is not enabled") as error:
        await chain.ProviderChain(providers=providers).generate(request=REQUEST, preferred="openai")
    assert not error.value.retryable
    assert providers[0].calls == 0


async def test_an_error_that_is_not_a_provider_error_is_a_bug_and_propagates() -> None:
    providers = [FakeProvider(name="a", error=KeyError("oops")), FakeProvider(name="b")]
    with pytest.raises(KeyError):
        await chain.ProviderChain(providers=providers).generate(request=REQUEST)
    assert providers[1].calls == 0


async def test_items_run_through_one_chain_concurrently() -> None:
    both_started = asyncio.Event()
    in_flight = 0

    class GatedProvider(FakeProvider):
        async def generate(self, *, request: base.GenerationRequest) -> base.GeneratedImage:
            nonlocal in_flight
            in_flight += 1
            if in_flight == 2:
                both_started.set()
            await both_started.wait()
            return await super().generate(request=request)

    providers_chain = chain.ProviderChain(providers=[GatedProvider(name="a")])
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            providers_chain.generate(request=REQUEST), providers_chain.generate(request=REQUEST)
        ),
        timeout=5,
    )
    assert [outcome.provider for outcome in outcomes] == ["a", "a"]


@pytest.mark.parametrize(
    ("names", "message"),
    [([], r"at least one provider"), (["a", "a"], r"names must be unique")],
)
def test_a_chain_needs_providers_with_unique_names(names: list[str], message: str) -> None:
    with pytest.raises(base.ConfigurationError, match=message):
        chain.ProviderChain(providers=[FakeProvider(name=name) for name in names])


async def test_closing_the_chain_closes_every_provider_even_if_one_fails() -> None:
    class BrokenClose(FakeProvider):
        async def aclose(self) -> None:
            raise OSError("close failed")

    broken, healthy = BrokenClose(name="a"), FakeProvider(name="b")
    with pytest.raises(ExceptionGroup):
        await chain.ProviderChain(providers=[broken, healthy]).aclose()
    assert healthy.closed


def test_providers_are_built_by_name_in_the_tenants_order() -> None:
    built = registry.build_chain(names=["local"], settings=registry.ProviderSettings(), environ={})
    assert built.names == ("local",)


def test_an_unknown_provider_name_is_a_clear_error_naming_it() -> None:
    with pytest.raises(base.ConfigurationError, match=r"unknown provider 'dalle'.*local, openai"):
        registry.build_chain(
            names=["local", "dalle"], settings=registry.ProviderSettings(), environ={}
        )


def test_a_repeated_provider_name_is_refused_before_anything_is_built() -> None:
    with pytest.raises(base.ConfigurationError, match=r"must be unique"):
        registry.build_chain(
            names=["local", "local"], settings=registry.ProviderSettings(), environ={}
        )


def test_openai_without_its_key_variable_names_the_variable() -> None:
    settings = registry.ProviderSettings(openai=openai.OpenAISettings(api_key_env="IMAGES_KEY"))
    with pytest.raises(base.ConfigurationError, match=r"IMAGES_KEY is empty or not set"):
        registry.build(name="openai", settings=settings, environ={})


async def test_openai_is_built_with_the_key_from_its_variable() -> None:
    provider = registry.build(
        name="openai", settings=registry.ProviderSettings(), environ={"OPENAI_API_KEY": "sk-t"}
    )
    try:
        assert provider.name == "openai"
        assert "sk-t" not in repr(provider)
    finally:
        await provider.aclose()
