"""How close minting gets to Stripe's rate limit, and what concurrency buys.

Stripe's rate limit is the pipeline's speed limit (100 requests/s live, 25/s in test mode), so
the number that matters is the share of that limit the minting engine reaches without a 429.
Runs the real minting code (paylinks.billing.mint.mint_payment_links, the StripeGateway, the real
SDK over HTTP) against the local emulator with a realistic per-call latency, and prints ratios
measured in this one run:

- achieved calls/s ÷ Stripe's limit, with PAYLINKS_STRIPE_MAX_RPS at 90% of it (the default,
  20/s, is 80% of test mode's 25/s) and the emulator enforcing the limit itself (target: ≥ 0.85
  of the limit with no 429, i.e. the pacer, not Stripe, sets the pace);
- concurrent ÷ sequential throughput at the live-mode limit (what the thread pool buys).

Usage: .venv/bin/python benchmarks/mint_throughput.py [--links 200] [--latency-ms 80]
"""

from __future__ import annotations

import argparse
import time

import stripe

from paylinks.billing.mint import MintJob, mint_payment_links
from paylinks.settings import Settings
from paylinks.stripe_api.gateway import StripeGateway
from stripe_emulator import EmulatorServer

KEY = "sk_test_benchmark"


def make_price(url: str) -> str:
    client = stripe.StripeClient(KEY, base_addresses={"api": url})
    product = client.v1.products.create(params={"name": "Season dues"})
    return client.v1.prices.create(params={"product": product.id, "unit_amount": 25000, "currency": "usd"}).id


def jobs(price_id: str, count: int, run: str) -> list[MintJob]:
    return [
        MintJob(
            row_id=i,
            mint_version=1,
            price_id=price_id,
            metadata={
                "tenant_id": run,
                "player_id": str(i),
                "product_id": "1",
                "payment_link_row_id": str(i),
            },
        )
        for i in range(count)
    ]


def measure(
    links: int, latency_ms: int, max_rps: float, concurrency: int, emulator_limit: float | None, run: str
) -> tuple[float, int, int]:
    """(calls per second, retries, links minted) for one configuration."""
    with EmulatorServer(host="127.0.0.1", port=0, latency_ms=latency_ms) as server:
        price_id = make_price(server.url)
        server.emulator.faults.rate_limit_rps = emulator_limit
        settings = Settings(stripe_api_key=KEY, stripe_api_base=server.url, stripe_max_rps=max_rps)
        gateway = StripeGateway(settings)
        started = time.perf_counter()
        results = mint_payment_links(gateway, jobs(price_id, links, run), concurrency)
        elapsed = time.perf_counter() - started
        minted = sum(1 for r in results if r.link_id)
        return minted / elapsed, gateway.retries, server.emulator.counts()["payment_links"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=80)
    args = parser.parse_args()

    print(f"minting {args.links} links per run, {args.latency_ms} ms per Stripe call")
    for label, limit in (("test mode", 25.0), ("live mode", 100.0)):
        for share in (0.8, 0.9, 1.0):
            rate, retries, created = measure(args.links, args.latency_ms, limit * share, 16, limit, label)
            print(
                f"{label}: Stripe limit {limit:.0f}/s, max_rps {limit * share:.0f}/s → achieved {rate:.1f}/s, "
                f"ratio to limit {rate / limit:.2f}, 429s retried {retries}, links at Stripe {created}"
            )
    sequential, _, _ = measure(args.links // 4, args.latency_ms, 100.0, 1, None, "sequential")
    concurrent, _, _ = measure(args.links, args.latency_ms, 100.0, 16, None, "concurrent")
    print(
        f"concurrency at the live limit: sequential {sequential:.1f}/s, concurrent {concurrent:.1f}/s, "
        f"ratio {concurrent / sequential:.1f}x"
    )


if __name__ == "__main__":
    main()
