"""localstripe (PyPI) in a thread of the test process, extended with what it lacks: Checkout
Sessions (`/v1/checkout/sessions`, retrieve, expire, idempotency keys) and a hosted Checkout
page on a second port (as checkout.stripe.com is another host than api.stripe.com).

The page charges the card through localstripe's own PaymentIntent (4242… succeeds,
4000000000000341 is declined: localstripe then sends `payment_intent.payment_failed`), marks
the session paid and sends `checkout.session.completed` through localstripe's webhook sender,
which signs with the registered secret and waits 1 s, as a real delivery lags.

    server = FakeStripe().start()      # once per test process (aiohttp routes freeze at start)
    server.reset(); server.register_webhook(url, secret)
Never the real Stripe: the app reaches it through STRIPE_API_BASE.
"""
from __future__ import annotations

import asyncio
import html
import json
import threading
import time

from aiohttp import web

from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe import webhooks as ls_webhooks
from localstripe.errors import UserError

# No pickle file: two test processes would clobber one fixed path (and we never reload it).
ls.Store.dump_to_disk = lambda self: None


class CheckoutSession(ls.StripeObject):
    """The subset of a Checkout Session (mode=payment) the app uses. Public attributes are
    exported as JSON, so every method here starts with an underscore."""
    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(self, mode=None, line_items=None, success_url=None, cancel_url=None, metadata=None,
                 payment_intent_data=None, client_reference_id=None, customer_email=None, **kwargs):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(sorted(kwargs)))
        try:
            assert mode == "payment"
            assert isinstance(line_items, list) and line_items
            total, currencies = 0, set()
            for item in line_items:
                price = item["price_data"]
                amount, quantity = int(price["unit_amount"]), int(item.get("quantity", 1))
                assert amount > 0 and quantity > 0 and price["product_data"]["name"]
                total += amount * quantity
                currencies.add(price["currency"].lower())
            assert len(currencies) == 1
            assert str(success_url).startswith("http") and str(cancel_url).startswith("http")
        except (AssertionError, KeyError, TypeError, ValueError):
            raise UserError(400, "Bad request")
        super().__init__()
        self.mode = mode
        self.amount_total = total
        self.currency = currencies.pop()
        self.status = "open"
        self.payment_status = "unpaid"
        self.payment_intent = None
        self.metadata = metadata or {}
        self.client_reference_id = client_reference_id
        self.customer_email = customer_email
        self.success_url = success_url
        self.cancel_url = cancel_url
        self.expires_at = self.created + 24 * 3600
        self.url = f"{FakeStripe.current.checkout_base}/pay/{self.id}"
        self._intent_metadata = (payment_intent_data or {}).get("metadata") or self.metadata

    def _pay(self, card_number: str):
        """Charge the card; on success the session is paid and checkout.session.completed sent."""
        pm = ls.PaymentMethod(type="card", card={"number": card_number, "exp_month": 12, "exp_year": 2034,
                                                 "cvc": "123"})
        pi = ls.PaymentIntent._api_create(amount=self.amount_total, currency=self.currency, payment_method=pm.id,
                                          metadata=dict(self._intent_metadata), confirm=True)
        self.payment_intent = pi.id
        self.status, self.payment_status = "complete", "paid"
        ls.schedule_webhook(ls.Event("checkout.session.completed", self))


class FakeStripe:
    """localstripe's aiohttp app plus the Checkout routes, served from a background thread."""
    current: "FakeStripe | None" = None

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.api_base = self.checkout_base = ""
        self.sent: list[dict] = []          # every event localstripe sent (type, data.object)
        self.idempotency: dict[str, tuple[str, str]] = {}
        self.keys: list[str] = []           # the secret key of each session created
        self._ready = threading.Event()
        self._runners = []
        self._deliveries: set[asyncio.Task] = set()   # webhooks localstripe is still to send

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeStripe":
        FakeStripe.current = self
        _install_api_routes()
        self._wrap_sender()
        threading.Thread(target=self._run, name="fake-stripe", daemon=True).start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Stripe did not start")
        return self

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())
        self._ready.set()
        self.loop.run_forever()

    async def _serve(self):
        for app, attr in ((ls_server.app, "api_base"), (_checkout_app(self), "checkout_base")):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]
            setattr(self, attr, f"http://127.0.0.1:{port}")
            self._runners.append(runner)

    def stop(self):
        async def cleanup():
            for runner in self._runners:
                await runner.cleanup()
        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _wrap_sender(self):
        # localstripe's own schedule_webhook sleeps 1 s and then posts to whatever webhooks are
        # registered *then*: a delivery an earlier test scheduled would reach the next test's
        # server. Keep each delivery's task so reset() can cancel the ones not yet sent.
        def schedule(event):
            self.sent.append({"id": event.id, "type": event.type, "object": event.data["object"]})
            task = asyncio.ensure_future(ls_webhooks._send_webhook(event))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        ls.schedule_webhook = schedule

    # -- per test ----------------------------------------------------------------------------
    def reset(self):
        def clear():
            for task in list(self._deliveries):
                task.cancel()
            self._deliveries.clear()
            ls.store.clear()
            ls_webhooks._webhooks.clear()
            self.idempotency.clear()
            self.sent.clear()
            self.keys.clear()
        self.call(clear)

    def register_webhook(self, url: str, secret: str, events=None):
        self.call(lambda: ls_webhooks.register_webhook("app", url, secret, events))

    def call(self, fn):
        """Run fn on the server's loop (its state is not thread-safe) and return its result."""
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def session(self, session_id: str) -> dict:
        return self.call(lambda: ls.store["checkout.session:" + session_id]._export())

    def sessions(self) -> list[dict]:
        return self.call(lambda: [v._export() for k, v in ls.store.items() if k.startswith("checkout.session:")])

    def pay(self, session_id: str, card: str = "4242424242424242"):
        """What the hosted page's Pay button does, for tests without a browser."""
        def go():
            ls.store["checkout.session:" + session_id]._pay(card)
        return self.call(go)

    def expire(self, session_id: str):
        return self.call(lambda: _expire(ls.store["checkout.session:" + session_id]))

    def wait_sent(self, kind: str, timeout: float = 5.0) -> list[dict]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [e for e in self.sent if e["type"] == kind]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {kind} event sent within {timeout}s")


def _expire(session: CheckoutSession):
    if session.status != "open":
        raise UserError(400, "Only an open Checkout Session can be expired")
    session.status = "expired"
    ls.schedule_webhook(ls.Event("checkout.session.expired", session))
    return session


# -- API routes (localstripe's app, before it starts) --------------------------------------
_installed = False


def _install_api_routes():
    global _installed
    if _installed:
        return
    _installed = True
    app = ls_server.app

    async def create(request):
        data = await ls_server.get_post_data(request) or {}
        key = request.headers.get("Idempotency-Key")
        fake = FakeStripe.current
        fake.keys.append(ls_server.get_api_key(request))
        fingerprint = json.dumps(data, sort_keys=True)
        if key and key in fake.idempotency:
            first, session_id = fake.idempotency[key]
            if first != fingerprint:
                return ls_server.json_response({"error": {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same parameters "
                               "they were first used with."}}, status=400)
            return ls_server.json_response(ls.store["checkout.session:" + session_id]._export())
        session = CheckoutSession(**data)
        if key:
            fake.idempotency[key] = (fingerprint, session.id)
        return ls_server.json_response(session._export())

    async def retrieve(request):
        return ls_server.json_response(CheckoutSession._api_retrieve(request.match_info["id"])._export())

    async def expire(request):
        return ls_server.json_response(_expire(CheckoutSession._api_retrieve(request.match_info["id"]))._export())

    app.router.add_post("/v1/checkout/sessions", create)
    app.router.add_get("/v1/checkout/sessions/{id}", retrieve)
    app.router.add_post("/v1/checkout/sessions/{id}/expire", expire)


# -- the hosted Checkout page (its own app and port) ---------------------------------------
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Fake Checkout</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto;color:#1f2937}}
.box{{border:1px solid #d1d5db;border-radius:.5rem;padding:1.5rem}}.amount{{font-size:2rem;font-weight:bold}}
input,button{{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;margin:.3rem 0}}
button{{background:#635bff;color:#fff;border:0;border-radius:.3rem}}.error{{color:#b91c1c}}</style></head>
<body><div class="box"><p>Fake Checkout (test mode, localstripe)</p><p>{name}</p>
<p class="amount" id="amount">{amount} {currency}</p>{body}</div></body></html>"""


def _checkout_app(fake: FakeStripe) -> web.Application:
    def render(session, body, status=200):
        name = html.escape(session.customer_email or "")
        amount = f"{session.amount_total / 100:.2f}"
        return web.Response(text=PAGE.format(name=name, amount=amount, currency=session.currency.upper(),
                                             body=body), content_type="text/html", status=status)

    def form(session, error=""):
        err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        return (f'{err}<form method="post"><label>Card number<input name="card" value="4242 4242 4242 4242">'
                f'</label><button type="submit" id="pay">Pay</button></form>'
                f'<p><a href="{html.escape(session.cancel_url)}">Cancel and go back</a></p>')

    def find(request):
        try:
            return ls.store["checkout.session:" + request.match_info["id"]]
        except KeyError:
            raise web.HTTPNotFound(text="No such checkout")

    async def page(request):
        session = find(request)
        if session.status != "open":
            return render(session, f"<p>This checkout is {session.status}.</p>", status=410)
        return render(session, form(session))

    async def pay(request):
        session = find(request)
        if session.status != "open":
            return render(session, f"<p>This checkout is {session.status}.</p>", status=410)
        card = "".join((await request.post()).get("card", "").split())
        try:
            session._pay(card)
        except UserError as e:
            message = e.body["error"].get("message") or "Your card was declined."
            return render(session, form(session, message), status=402)
        raise web.HTTPSeeOther(session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id))

    app = web.Application()
    app.router.add_get("/pay/{id}", page)
    app.router.add_post("/pay/{id}", pay)
    return app


def deliver(client, sent_event: dict, secret: str, url: str = "/webhooks/stripe"):
    """Post one event the fake sent to the app through a test client, signed with the stripe
    library's own scheme (for tests that do not run the app over HTTP)."""
    import stripe

    body = json.dumps({"id": sent_event["id"], "object": "event", "type": sent_event["type"],
                       "data": {"object": sent_event["object"]}})
    header = stripe.WebhookSignature.generate_signature_header(body, secret)
    return client.post(url, data=body, headers={"Stripe-Signature": header, "Content-Type": "application/json"})
