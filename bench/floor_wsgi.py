"""The floor of bench/webhooks.py: a bare Flask endpoint on the same gunicorn, same senders.

It reads the body and answers the JSON the webhook answers, nothing else: no signature, no
database, no Redis, none of the app's request hooks. Whatever the webhook can reach, it is
below this.
"""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/webhooks/stripe")
def floor():
    request.get_data()
    return jsonify(received=True, outcome="floor")
