"""The first request of each kind imports nothing: a fresh gunicorn worker answers it as fast as the rest.

The check runs in a fresh interpreter, because this test process has imported whatever other tests needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.signing import signed
from tests.support import ROOT, World, solved_event, survey_link

# Builds the app the way a gunicorn worker does (tracker.cli.serve.web_app: the real Celery enqueue),
# then makes each first request and prints the modules it imported, by request.
CHILD = r'''
import gc, json, os, re, sys
from tracker.cli.serve import web_app
from tracker.config import load_settings

given = json.loads(sys.argv[1])
client = web_app(load_settings(os.environ)).test_client()
auth = {"Authorization": "Bearer " + given["key"]}
seen = {}

def first(label, method, path, **kwargs):
    before = set(sys.modules)
    answer = client.open(path, method=method, **kwargs)
    seen[label] = [answer.status_code, sorted(set(sys.modules) - before)]
    return answer

hook = given["webhook"]
first("webhook", "POST", "/webhooks/standard", data=hook["body"].encode(), headers=hook["headers"])
first("webhook retried", "POST", "/webhooks/standard", data=hook["body"].encode(), headers=hook["headers"])
first("webhook unsigned", "POST", "/webhooks/standard", data=hook["body"].encode(),
      headers={"Content-Type": "application/json"})
first("score card", "GET", "/api/v1/customers/" + given["email"], headers=auth)
first("customers by value", "GET", "/api/v1/customers?sort=value", headers=auth)
first("customers at risk", "GET", "/api/v1/customers?at_risk=true", headers=auth)
first("summary", "GET", "/api/v1/summary", headers=auth)
first("agents", "GET", "/api/v1/agents", headers=auth)
first("timeline", "GET", "/api/v1/customers/" + given["email"] + "/timeline", headers=auth)
first("bad query", "GET", "/api/v1/customers?limit=nope", headers=auth)
first("no key", "GET", "/api/v1/agents")
page = first("dashboard login page", "GET", "/dashboard/login").get_data(as_text=True)
csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
first("dashboard login", "POST", "/dashboard/login", data={"key": given["key"], "csrf_token": csrf})
first("dashboard", "GET", "/dashboard")
first("survey page", "GET", given["survey"])
first("survey answer", "POST", given["survey"], data={"rating": "4", "comment": "Fine"})
first("home", "GET", "/")
first("not found page", "GET", "/s/nope")
first("healthz", "GET", "/healthz")
first("readyz", "GET", "/readyz")
first("metrics", "GET", "/metrics")
seen["objects frozen after warm-up"] = [200 if gc.get_freeze_count() > 1000 else 500, []]
print(json.dumps(seen))
'''

EXPECTED = {"webhook": 202, "webhook retried": 200, "webhook unsigned": 401, "score card": 200,
            "customers by value": 200, "customers at risk": 200, "summary": 200, "agents": 200, "timeline": 200,
            "bad query": 422, "no key": 401, "dashboard login page": 200, "dashboard login": 303, "dashboard": 200,
            "survey page": 200, "survey answer": 200, "home": 200, "not found page": 404, "healthz": 200,
            "readyz": 200, "metrics": 200, "objects frozen after warm-up": 200}


def test_the_first_request_of_each_kind_imports_no_module(env: dict[str, str], store: Any, smtp: Any,
                                                            post_event: Any, client: Any) -> None:
    world = World(post_event, store, env, smtp, client)
    world.solved_and_answered("T-1", "anna@example.no", 5, "Quick")
    world.solve("T-2", "kari@example.no")
    assert world.send() == ["sent"]
    survey = survey_link(world.mail_to("kari@example.no"), 4)
    body = json.dumps(solved_event(ticket="T-9", email_address="new@example.no")).encode()
    headers, _ = signed("standard", body, headers={"webhook-id": "msg-first-request"})
    given = {"key": store.create_key("lead"), "email": "anna@example.no", "survey": survey,
             "webhook": {"body": body.decode(), "headers": {"Content-Type": "application/json", **headers}}}
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(given)], cwd=ROOT, env={**os.environ, **env},
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr[-3000:]
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert {label: status for label, (status, _) in seen.items()} == EXPECTED
    imported = {label: modules for label, (_, modules) in seen.items() if modules}
    assert imported == {}, json.dumps(imported, indent=1)
