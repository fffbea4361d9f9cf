"""Table-driven checks of the score maths, survey tokens, settings and events, against SPEC §3 to §6."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest

from tests.support import TlsFiles, make_tls_files
from tracker.broker_url import broker_connection, broker_tls, with_sentinel_sockets
from tracker.config import ConfigError, hide_secrets, load_settings, redact_url
from tracker.events import event_from_record, event_record, parse_event
from tracker.model import Agent, Aggregate, Customer, Event, Order, Ticket
from tracker.scales import SCALES
from tracker.scores.maths import DAY_MS, score_card
from tracker.surveys.tokens import make_token, read_token, survey_id

SECRET = "unit-test-secret-0123456789abcdef"
NOW = int(datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp() * 1000)
HALF_LIFE = 90.0

# SPEC §5: every scale's values, their 0-100 value and whether they count as satisfied.
SCALE_TABLE: dict[str, list[tuple[int, Fraction, bool]]] = {
    "csat5": [(v, Fraction((v - 1) * 25), v in (4, 5)) for v in range(1, 6)],
    "csat3": [(v, Fraction((v - 1) * 50), v == 3) for v in range(1, 4)],
    "thumbs": [(0, Fraction(0), False), (1, Fraction(100), True)],
    "nps": [(v, Fraction(v * 10), v in (9, 10)) for v in range(0, 11)],
    "ces7": [(v, Fraction((v - 1) * 100, 6), 5 <= v <= 7) for v in range(1, 8)],
}
SCALE_ROWS = [(name, v, value, satisfied) for name, rows in SCALE_TABLE.items() for v, value, satisfied in rows]


# Scales


def test_every_scale_offers_exactly_the_values_of_the_spec():
    assert set(SCALES) == set(SCALE_TABLE)
    for name, rows in SCALE_TABLE.items():
        assert list(SCALES[name].values) == [v for v, _, _ in rows], name


@pytest.mark.parametrize("scale,rating,value,satisfied", SCALE_ROWS,
                         ids=[f"{s}-{r}" for s, r, _, _ in SCALE_ROWS])
def test_each_rating_maps_to_its_spec_value_and_satisfaction(scale, rating, value, satisfied):
    assert SCALES[scale].value(rating) == value
    assert SCALES[scale].satisfied(rating) is satisfied
    part = Aggregate.of_answer(SCALES[scale], rating, NOW, HALF_LIFE)
    assert Fraction(part.value6, 6) == value
    assert part.satisfied == int(satisfied)


@pytest.mark.parametrize("rating,kind", [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"),
                                         (9, "promoter"), (10, "promoter")])
def test_nps_ratings_are_promoters_passives_or_detractors(rating, kind):
    assert SCALES["nps"].nps_class(rating) == kind
    part = Aggregate.of_answer(SCALES["nps"], rating, NOW, HALF_LIFE)
    assert (part.promoter, part.detractor, part.nps) == (int(kind == "promoter"), int(kind == "detractor"), 1)


@pytest.mark.parametrize("scale", ["csat5", "csat3", "thumbs", "ces7"])
def test_answers_on_other_scales_never_count_towards_nps(scale):
    for rating in SCALES[scale].values:
        part = Aggregate.of_answer(SCALES[scale], rating, NOW, HALF_LIFE)
        assert (part.promoter, part.detractor, part.nps) == (0, 0, 0)


# Aggregate fields


SCORE_FIELDS = ("score", "average", "csat", "responses", "surveys_sent", "response_rate", "trend", "nps")


def sums(answers: Iterable[tuple[str, int, int]], sent: int = 0) -> Aggregate:
    """Sum (scale, rating, at_ms) answers the way the store keeps them, read back as Redis would return them."""
    agg = Aggregate(sent=sent)
    for scale, rating, at in answers:
        agg += Aggregate.of_answer(SCALES[scale], rating, at, HALF_LIFE)
    return Aggregate.from_hash(*agg.to_hash())


def aggregate_fields(agg: Aggregate, now_ms: int) -> dict[str, Any]:
    card = score_card("someone", agg, now_ms)
    return {name: getattr(card, name) for name in SCORE_FIELDS}


def days_ago(days: float) -> int:
    return NOW - int(days * DAY_MS)


def test_no_data_gives_null_not_zero():
    assert aggregate_fields(Aggregate(), NOW) == {"score": None, "average": None, "csat": None, "responses": 0,
                                              "surveys_sent": 0, "response_rate": None, "trend": None,
                                              "nps": None}


def test_surveys_sent_without_answers_give_a_zero_response_rate_and_null_scores():
    fields = aggregate_fields(sums([], sent=4), NOW)
    assert fields["surveys_sent"] == 4 and fields["response_rate"] == 0.0
    assert (fields["score"], fields["average"], fields["csat"], fields["trend"], fields["nps"]) == (None,) * 5


def test_the_lowest_ratings_only_give_zero_not_null():
    fields = aggregate_fields(sums([("csat5", 1, days_ago(1)), ("csat5", 1, days_ago(2))], sent=2), NOW)
    assert (fields["average"], fields["csat"], fields["score"]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("answers,sent,expected", [
    ([("csat5", 5, 1), ("csat5", 4, 2), ("csat5", 2, 3), ("csat5", 1, 4)], 8,
     {"responses": 4, "average": 50.0, "csat": 50.0, "response_rate": 50.0, "nps": None}),
    ([("csat3", 3, 1), ("csat3", 2, 2), ("csat3", 3, 3)], 3,
     {"responses": 3, "average": 83.33, "csat": 66.67, "response_rate": 100.0, "nps": None}),
    ([("thumbs", 1, 1), ("thumbs", 0, 2)], 5,
     {"responses": 2, "average": 50.0, "csat": 50.0, "response_rate": 40.0, "nps": None}),
    ([("nps", 10, 1), ("nps", 9, 2), ("nps", 8, 3), ("nps", 6, 4), ("nps", 0, 5)], 5,
     {"responses": 5, "average": 66.0, "csat": 40.0, "response_rate": 100.0, "nps": 0.0}),
    ([("nps", 10, 1), ("nps", 10, 2), ("nps", 7, 3)], 3,
     {"responses": 3, "average": 90.0, "csat": 66.67, "nps": 66.67}),
    ([("nps", 0, 1), ("nps", 3, 2)], 2, {"nps": -100.0, "csat": 0.0}),
    ([("ces7", 7, 1), ("ces7", 4, 2), ("ces7", 1, 3)], 4,
     {"responses": 3, "average": 50.0, "csat": 33.33, "response_rate": 75.0, "nps": None}),
    ([("csat5", 5, 1), ("nps", 10, 2), ("nps", 0, 3)], 3, {"responses": 3, "nps": 0.0, "csat": 66.67}),
], ids=["csat5", "csat3", "thumbs", "nps mixed", "nps promoters", "nps detractors", "ces7", "csat5 and nps"])
def test_average_csat_response_rate_and_nps_follow_the_spec(answers, sent, expected):
    fields = aggregate_fields(sums([(s, r, days_ago(d)) for s, r, d in answers], sent=sent), NOW)
    assert {k: fields[k] for k in expected} == expected


def direct_score(answers: list[tuple[str, int, int]], query_ms: int) -> float:
    """SPEC §6 literally: Σ v·2^(-age/h) / Σ 2^(-age/h), age measured at query time."""
    weights = [2 ** (-(query_ms - at) / (HALF_LIFE * DAY_MS)) for _, _, at in answers]
    values = [float(SCALES[s].value(r)) for s, r, _ in answers]
    return sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)


@pytest.mark.parametrize("query_ms", [NOW, NOW + 400 * DAY_MS], ids=["now", "400 days later"])
def test_the_decayed_score_equals_the_direct_computation_at_any_query_time(query_ms):
    answers = [("csat5", 5, days_ago(300)), ("csat5", 5, days_ago(200)), ("csat5", 1, days_ago(10)),
               ("csat5", 2, days_ago(1)), ("nps", 10, days_ago(95))]
    fields = aggregate_fields(sums(answers), query_ms)
    expected = direct_score(answers, query_ms)
    assert fields["score"] == pytest.approx(expected, abs=0.01)
    # Recent unhappiness weighs more than old praise: the score is well below the plain average.
    assert fields["average"] == 65.0 and fields["score"] < 55


def test_the_decayed_score_of_one_answer_is_its_value():
    fields = aggregate_fields(sums([("ces7", 6, days_ago(500))]), NOW)
    assert fields["score"] == pytest.approx(float(Fraction(500, 6)), abs=0.01)


def test_trend_is_the_last_30_days_mean_minus_the_30_days_before():
    answers = [("csat5", 5, days_ago(0)), ("csat5", 3, days_ago(29)),  # recent: 100, 50
               ("csat5", 2, days_ago(30)), ("csat5", 4, days_ago(59)),  # earlier: 25, 75
               ("csat5", 1, days_ago(60)), ("csat5", 1, days_ago(400))]  # outside both windows
    assert aggregate_fields(sums(answers), NOW)["trend"] == 25.0


@pytest.mark.parametrize("days", [[0, 5, 29], [30, 45, 59], [60, 90], []],
                         ids=["only recent", "only earlier", "only older", "none"])
def test_trend_is_null_when_either_window_is_empty(days):
    fields = aggregate_fields(sums([("csat5", 4, days_ago(d)) for d in days]), NOW)
    assert fields["trend"] is None


def test_trend_can_be_negative_and_is_measured_from_the_query_day():
    answers = [("csat5", 1, days_ago(1)), ("csat5", 5, days_ago(40))]
    assert aggregate_fields(sums(answers), NOW)["trend"] == -100.0
    # 40 days on, the low answer is in the earlier window and the high one has left both.
    assert aggregate_fields(sums(answers), NOW + 40 * DAY_MS)["trend"] is None


def test_trend_counts_an_answer_after_the_query_day_in_neither_window():
    answers = [("csat5", 1, days_ago(1)), ("csat5", 5, days_ago(40))]
    later = [*answers, ("csat5", 5, days_ago(-3))]  # 3 days after the query day: counted, it would make -50
    assert aggregate_fields(sums(later), NOW)["trend"] == aggregate_fields(sums(answers), NOW)["trend"] == -100.0
    assert aggregate_fields(sums(later), NOW + 3 * DAY_MS)["trend"] == -50.0  # on its day it is recent


# Survey tokens


SID = survey_id("zendesk:1001", 1_795_000_000_000)
TOKEN = make_token(SECRET, SID)


def test_a_token_reads_back_to_its_survey():
    assert read_token(SECRET, TOKEN) == SID


def test_tokens_are_safe_in_urls_and_email_local_parts():
    assert re.fullmatch(r"[a-z2-7]+-[a-z2-7]+", TOKEN)
    assert len(f"reply+{TOKEN}") <= 64  # the longest local part RFC 5321 allows


def test_an_uppercased_token_still_verifies_because_mail_servers_may_fold_case():
    assert read_token(SECRET, TOKEN.upper()) == SID
    assert read_token(SECRET, TOKEN[:10].upper() + TOKEN[10:]) == SID


@pytest.mark.parametrize("position", range(len(TOKEN)))
def test_a_token_with_any_one_character_changed_is_refused(position):
    if TOKEN[position] == "-":
        swapped = "_"
    else:
        swapped = "a" if TOKEN[position] != "a" else "b"
    assert read_token(SECRET, TOKEN[:position] + swapped + TOKEN[position + 1:]) is None


@pytest.mark.parametrize("token", [TOKEN[:-1], TOKEN[:21], TOKEN[:20], TOKEN + "a", TOKEN + TOKEN, "",
                                   "-", SID, TOKEN.replace("-", ""), "ä" * 47, TOKEN + "\x00", "a" * 1000],
                         ids=["one short", "sid and dash", "sid only", "one long", "doubled", "empty", "dash",
                              "bare sid", "no dash", "non-ascii", "nul", "huge"])
def test_a_truncated_or_malformed_token_is_refused(token):
    assert read_token(SECRET, token) is None


def test_a_token_signed_with_another_secret_is_refused():
    assert read_token(SECRET, make_token("another-secret-0123456789abcdef", SID)) is None


def test_the_survey_id_is_the_same_on_every_retry_and_differs_per_solve_and_ticket():
    assert survey_id("zendesk:1001", 1_795_000_000_000) == SID
    assert survey_id("zendesk:1001", "1795000000000") == SID
    assert survey_id("zendesk:1001", 1_795_000_000_001) != SID
    assert survey_id("zendesk:1002", 1_795_000_000_000) != SID
    assert survey_id("standard:1001", 1_795_000_000_000) != SID
    assert re.fullmatch(r"[a-z2-7]{20}", SID)


# Settings


REQUIRED = {
    "TRACKER_REDIS_URL": "redis://127.0.0.1:6379/0",
    "TRACKER_SECRET_KEY": "a-long-random-secret-key-0123456789",
    "TRACKER_SMTP_URL": "smtp://127.0.0.1:1025",
}


@pytest.mark.parametrize("name", sorted(REQUIRED))
@pytest.mark.parametrize("value", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_each_required_variable_missing_stops_with_a_message_naming_it(name, value):
    environ = {k: v for k, v in REQUIRED.items() if k != name}
    if value is not None:
        environ[name] = value
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert name in str(caught.value)
    assert "\n" not in str(caught.value)


MALFORMED = [
    ("TRACKER_REDIS_URL", "http://localhost:6379"), ("TRACKER_REDIS_URL", "localhost:6379"),
    ("TRACKER_REDIS_URL", "redis://localhost:notaport"), ("TRACKER_BROKER_URL", "http://localhost"),
    ("TRACKER_SECRET_KEY", "short"), ("TRACKER_PUBLIC_URL", "ftp://example.com"),
    ("TRACKER_PUBLIC_URL", "example.com"), ("TRACKER_PUBLIC_URL", "http://"),
    ("TRACKER_PUBLIC_URL", "https://example.com:99999"), ("TRACKER_BIND", "8000"),
    ("TRACKER_BIND", "localhost:http"), ("TRACKER_BIND", "0.0.0.0:70000"),
    ("TRACKER_SMTP_URL", "mail.example.com"), ("TRACKER_SMTP_URL", "http://mail.example.com"),
    ("TRACKER_SMTP_URL", "smtp://mail.example.com:99999"), ("TRACKER_MAIL_FROM", "Support"),
    ("TRACKER_REPLY_DOMAIN", "not a domain"),
    ("TRACKER_SURVEY_DELAY", "soon"), ("TRACKER_SURVEY_DELAY", "-1"), ("TRACKER_SURVEY_DELAY", "1.5"),
    ("TRACKER_SURVEY_THROTTLE_DAYS", "seven"), ("TRACKER_SURVEY_THROTTLE_DAYS", "-7"),
    ("TRACKER_SURVEY_EXPIRY_DAYS", "0"), ("TRACKER_SURVEY_EXPIRY_DAYS", "two weeks"),
    ("TRACKER_SURVEY_SCALE", "stars"), ("TRACKER_SURVEY_SCALE", "csat10"),
    ("TRACKER_SWEEP_INTERVAL", "fast"), ("TRACKER_SWEEP_INTERVAL", "0"), ("TRACKER_SWEEP_INTERVAL", "nan"),
    ("TRACKER_SWEEP_INTERVAL", "inf"),
    ("TRACKER_SCORE_HALF_LIFE_DAYS", "ninety"), ("TRACKER_SCORE_HALF_LIFE_DAYS", "0"),
    ("TRACKER_SCORE_HALF_LIFE_DAYS", "-90"), ("TRACKER_SCORE_HALF_LIFE_DAYS", "nan"),
    ("TRACKER_SCORE_HALF_LIFE_DAYS", "inf"),
    ("TRACKER_AT_RISK_SCORE", "low"), ("TRACKER_AT_RISK_SCORE", "-1"), ("TRACKER_AT_RISK_SCORE", "nan"),
    ("TRACKER_ALERT_URLS", "not-a-url"), ("TRACKER_ALERT_URLS", "https://alerts.example.com,ftp://x"),
    ("TRACKER_WEB_WORKERS", "0"), ("TRACKER_WEB_WORKERS", "many"), ("TRACKER_LOG_LEVEL", "LOUD"),
]


@pytest.mark.parametrize("name,value", MALFORMED, ids=[f"{n}={v}" for n, v in MALFORMED])
def test_a_malformed_value_stops_with_a_message_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED, name: value})
    assert name in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name,value", [
    ("TRACKER_SMTP_URL", "smtp://mailer:hunter2-smtp@mail.example.com:notaport"),
    ("TRACKER_SMTP_URL", "http://mailer:hunter2-smtp@mail.example.com"),
    ("TRACKER_REDIS_URL", "redis://:hunter2-redis@redis.example.com:notaport/0"),
    ("TRACKER_REDIS_URL", "http://:hunter2-redis@redis.example.com"),
    ("TRACKER_BROKER_URL", "http://guest:hunter2-broker@rabbit.example.com"),
], ids=["smtp port", "smtp scheme", "redis port", "redis scheme", "broker scheme"])
def test_a_malformed_url_is_named_without_showing_its_password(name, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED, name: value})
    assert name in str(caught.value)
    assert "hunter2" not in str(caught.value)


# Values an operator might leave in place: published placeholders, fill-me-in words, too short.
WEAK_SECRETS = [
    "0123456789abcdef0123456789abcde",  # 31 characters
    "change-me-in-production-please",  # the old docker-compose.yml fallback (30)
    "change-me-in-production-please-now-0123",
    "CHANGEME-CHANGEME-CHANGEME-CHANGEME",
    "please-change-this-secret-key-before-use",
    "replace-me-with-a-long-random-string-0123",
    "your-secret-key-goes-here-0123456789abc",
    "insecure-dev-key-do-not-use-in-production",
    "placeholder-placeholder-placeholder",
    "secretsecretsecretsecretsecretsecret",
    "x" * 40,
    "abababababababababababababababababab",
]


@pytest.mark.parametrize("secret", WEAK_SECRETS)
def test_a_short_or_placeholder_secret_key_is_refused_in_one_line_naming_it(secret):
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED, "TRACKER_SECRET_KEY": secret})
    message = str(caught.value)
    assert message.startswith("TRACKER_SECRET_KEY") and "\n" not in message
    assert secret not in message  # a refused secret may still be real: it is never echoed


def test_random_secret_keys_are_accepted():
    import secrets

    for _ in range(200):
        for key in (secrets.token_urlsafe(32), secrets.token_hex(16), secrets.token_urlsafe(24)):
            assert load_settings({**REQUIRED, "TRACKER_SECRET_KEY": key}).secret_key == key


def test_store_only_commands_need_only_the_redis_url():
    settings = load_settings({"TRACKER_REDIS_URL": "redis://127.0.0.1:6379/0"}, needs="store")
    assert settings.redis_url == settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.secret_key == "" and settings.smtp_url == ""
    with pytest.raises(ConfigError, match="TRACKER_REDIS_URL"):
        load_settings({}, needs="store")
    # An HTTP mail transport without its key is not the store's business either.
    assert load_settings({"TRACKER_REDIS_URL": "redis://r/0", "TRACKER_MAIL_TRANSPORT": "postmark"},
                         needs="store").mail_transport == "postmark"


@pytest.mark.parametrize("name,value", [
    ("TRACKER_SECRET_KEY", "short"), ("TRACKER_SECRET_KEY", "change-me-in-production-please"),
    ("TRACKER_SMTP_URL", "http://mail.example.com"), ("TRACKER_SURVEY_DELAY", "soon"),
    ("TRACKER_AT_RISK_SCORE", "low"),
])
def test_store_only_commands_still_refuse_a_malformed_value_that_is_set(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({"TRACKER_REDIS_URL": "redis://127.0.0.1:6379/0", name: value}, needs="store")


def test_the_defaults_are_those_of_the_spec():
    settings = load_settings(REQUIRED)
    assert settings.redis_url == REQUIRED["TRACKER_REDIS_URL"]
    assert settings.broker_url == REQUIRED["TRACKER_REDIS_URL"]
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.bind == "127.0.0.1:8000"
    assert settings.mail_from == "Support <support@localhost>"
    assert settings.reply_domain is None
    assert settings.survey_delay == 86400
    assert settings.survey_throttle_days == 7
    assert settings.survey_expiry_days == 14
    assert settings.survey_scale == "csat5"
    assert settings.sweep_interval == 15
    assert settings.score_half_life_days == 90
    assert settings.at_risk_score == 50
    assert dict(settings.source_secrets) == {}
    assert settings.alert_urls == ()


def test_given_values_are_read_and_a_trailing_slash_on_the_public_url_dropped():
    settings = load_settings({
        **REQUIRED, "TRACKER_BROKER_URL": "amqp://guest@rabbit:5672//", "TRACKER_PUBLIC_URL": "https://csat.example.com/",
        "TRACKER_SURVEY_DELAY": "0", "TRACKER_SURVEY_THROTTLE_DAYS": "0", "TRACKER_SURVEY_SCALE": "nps",
        "TRACKER_SCORE_HALF_LIFE_DAYS": "30.5", "TRACKER_REPLY_DOMAIN": "reply.example.com",
        "TRACKER_SOURCE_ZENDESK_SECRET": " zd-secret ", "TRACKER_SOURCE_SHOPIFY_SECRET": "",
        "TRACKER_ALERT_URLS": "https://a.example.com/hook, https://b.example.com/hook",
    })
    assert settings.broker_url == "amqp://guest@rabbit:5672//"
    assert settings.public_url == "https://csat.example.com"
    assert (settings.survey_delay, settings.survey_throttle_days) == (0, 0)
    assert settings.survey_scale == "nps" and settings.score_half_life_days == 30.5
    assert settings.reply_domain == "reply.example.com"
    assert dict(settings.source_secrets) == {"zendesk": "zd-secret"}
    assert settings.alert_urls == ("https://a.example.com/hook", "https://b.example.com/hook")


# Settings: RabbitMQ over TLS as the broker


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    try:
        return make_tls_files(tmp_path_factory.mktemp("tls"))
    except RuntimeError as exc:
        pytest.skip(str(exc))


def test_an_amqps_broker_is_read_with_its_files_and_handed_to_kombu_without_its_tls_options(tls):
    url = (f"amqps://tracker:pw%2F9@rabbit.example.com:5671/tracker?ssl_ca_certs={tls.ca}"
           f"&ssl_certfile={tls.client_cert}&ssl_keyfile={tls.client_key}")
    assert load_settings({**REQUIRED, "TRACKER_BROKER_URL": url}).broker_url == url
    # kombu would hand ssl_* to py-amqp under names it fails on: Celery gets them as broker_use_ssl instead.
    assert broker_connection(url) == ("amqps://tracker:pw%2F9@rabbit.example.com:5671/tracker", {})
    assert broker_tls(url) == {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": str(tls.ca),
                               "certfile": str(tls.client_cert), "keyfile": str(tls.client_key),
                               "server_hostname": "rabbit.example.com"}


@pytest.mark.parametrize(("query", "checked", "hostname"), [
    ("", ssl.CERT_REQUIRED, "rabbit.example.com"),  # a bare amqps:// URL: py-amqp alone would check no host name
    ("?ssl_cert_reqs=required", ssl.CERT_REQUIRED, "rabbit.example.com"),
    ("?ssl_cert_reqs=optional", ssl.CERT_OPTIONAL, "rabbit.example.com"),
    ("?ssl_check_hostname=false", ssl.CERT_REQUIRED, None),
    ("?ssl_check_hostname=False&ssl_cert_reqs=required", ssl.CERT_REQUIRED, None),
    ("?ssl_cert_reqs=none", ssl.CERT_NONE, None),  # py-amqp cannot check a name without the certificate
])
def test_an_amqps_broker_checks_the_certificate_and_its_host_name_unless_its_url_says_otherwise(query, checked,
                                                                                                hostname):
    url = f"amqps://u:p@rabbit.example.com/v{query}"
    assert load_settings({**REQUIRED, "TRACKER_BROKER_URL": url}).broker_url == url
    tls = broker_tls(url)
    assert tls is not None and tls["cert_reqs"] == checked and tls.get("server_hostname") == hostname
    assert broker_connection(url)[0] == "amqps://u:p@rabbit.example.com/v"


def test_only_an_amqps_broker_gets_tls_settings_of_its_own():
    for url in ("amqp://u:p@rabbit/v", "rediss://:p@h:6380/0", "redis://h/0", "sentinel://s:26379/0?master_name=m"):
        assert broker_tls(url) is None, url


# A broker behind Sentinel: the master's credentials in the user part, the Sentinels' own in the query.

def test_a_sentinel_brokers_credentials_and_database_reach_every_sentinels_url_and_its_own_the_transport():
    # kombu reads one URL's credentials and database at a time: every URL gets those written on any one of them.
    url = "sentinel://:m%2Fpw@s1:26379;sentinel://s2:26380/2?master_name=mymaster&sentinel_password=s%2Bpw%26x"
    assert broker_connection(url) == ("sentinel://:m%2Fpw@s1:26379/2;sentinel://:m%2Fpw@s2:26380/2",
                                      {"master_name": "mymaster", "sentinel_kwargs": {"password": "s+pw&x"}})
    users = "sentinel://tracker:pw@s1;sentinel://tracker:pw@[::1]:26380/0?master_name=m&sentinel_username=watcher" \
            "&sentinel_password=spw"
    assert broker_connection(users) == ("sentinel://tracker:pw@s1/0;sentinel://tracker:pw@[::1]:26380/0",
                                        {"master_name": "m", "sentinel_kwargs": {"username": "watcher",
                                                                                 "password": "spw"}})
    assert broker_connection("sentinel://s1:26379/0?master_name=m") == ("sentinel://s1:26379/0", {"master_name": "m"})
    for given in (url, users):
        assert load_settings({**REQUIRED, "TRACKER_BROKER_URL": given}).broker_url == given


def test_kombu_keeps_the_masters_password_and_database_when_it_moves_on_to_the_next_sentinels_url():
    from kombu import Connection

    url, options = broker_connection("sentinel://:m%2Fpw@s1:26379;sentinel://s2:26379/3?master_name=m")
    connection = Connection(url, transport_options=options)
    for host in ("s2", "s1"):  # what a lost connection does, URL after URL
        connection.maybe_switch_next()
        assert (connection.hostname, connection.password, connection.virtual_host) == (host, "m/pw", "3")


def test_the_sentinels_get_the_socket_options_beside_their_own_credentials():
    options = {"visibility_timeout": 3600, "socket_timeout": 5, "socket_connect_timeout": 3, "socket_keepalive": True,
               "master_name": "m", "sentinel_kwargs": {"password": "spw"}}
    assert with_sentinel_sockets(options) == {**options, "sentinel_kwargs": {
        "socket_timeout": 5, "socket_connect_timeout": 3, "socket_keepalive": True, "password": "spw"}}
    # Without credentials of their own, redis-py gives the Sentinels the socket options itself.
    assert with_sentinel_sockets({"socket_timeout": 5, "master_name": "m"}) == {"socket_timeout": 5, "master_name": "m"}


def test_a_sentinel_broker_with_tls_options_puts_the_master_and_the_sentinels_behind_tls(tls):
    url = f"sentinel://:pw@s1:26379/0?master_name=m&sentinel_password=spw&ssl_ca_certs={tls.ca}"
    assert load_settings({**REQUIRED, "TRACKER_BROKER_URL": url}).broker_url == url
    master = {"ssl_ca_certs": str(tls.ca), "ssl_cert_reqs": "required", "ssl_check_hostname": True}
    assert broker_tls(url) == master  # Celery's broker_use_ssl: kombu's ssl, kept from one Sentinel's URL to the next
    assert broker_connection(url) == ("sentinel://:pw@s1:26379/0", {"master_name": "m", "sentinel_kwargs": {
        "password": "spw", "ssl": True, **master}})
    unchecked = f"{url}&ssl_check_hostname=false&ssl_cert_reqs=optional"
    assert broker_tls(unchecked) == {**master, "ssl_check_hostname": False, "ssl_cert_reqs": "optional"}
    assert broker_tls("sentinel://s1:26379/0?master_name=m") is None


def test_a_sentinel_brokers_passwords_are_hidden_as_written_and_as_decoded():
    url = "sentinel://:m%2Fpw-1234@s1:26379;sentinel://s2:26379/0?master_name=m&sentinel_password=s%2Bpw%26-5678"
    assert redact_url(url) == "sentinel://:***@s1:26379;sentinel://s2:26379/0?master_name=m&sentinel_password=***"
    assert hide_secrets(f"m/pw-1234, s+pw&-5678 and {url}", url) == \
        "***, *** and sentinel://:***@s1:26379;sentinel://s2:26379/0?master_name=m&sentinel_password=***"


@pytest.mark.parametrize(("url", "said"), [
    ("sentinel://:hunter2-a@s1:26379;sentinel://:hunter2-b@s2:26379/0?master_name=m",
     "TRACKER_BROKER_URL: the Sentinels' URLs give the master different credentials: give them once, on the first"),
    ("sentinel://s1:26379/1;sentinel://s2:26379/2?master_name=m",
     "TRACKER_BROKER_URL: the Sentinels' URLs name different databases (1, 2): name it once, after the last Sentinel"),
    ("sentinel://:hunter2-m@s1:26379/zero?master_name=m",
     "TRACKER_BROKER_URL: the database after a Sentinel's host must be a number"),
    ("sentinel://:hunter2-m@s1:26379/0?master_name=m;sentinel://s2:26379",
     "TRACKER_BROKER_URL: the query of a sentinel:// URL (master_name=...) follows the last Sentinel"),
    ("sentinel://s1:26379/0?master_name=m&password=hunter2-m",
     "TRACKER_BROKER_URL: a sentinel:// URL takes only master_name, sentinel_username, sentinel_password and the TLS "
     "options ssl_ca_certs, ssl_ca_path, ssl_certfile, ssl_keyfile, ssl_password, ssl_cert_reqs, ssl_check_hostname in "
     "its query (the master's credentials go in the user part: sentinel://:PASSWORD@s1:26379;"),
    ("sentinel://s1:26379/0?master_name=m&ssl_cert_reqs=sometimes&sentinel_password=hunter2-s",
     "TRACKER_BROKER_URL: ssl_cert_reqs is none, optional or required, got 'sometimes'"),
    ("sentinel://s1:26379/0?master_name=m&ssl_ca_certs=/no/such/ca.pem&sentinel_password=hunter2-s",
     "TRACKER_BROKER_URL: ssl_ca_certs names /no/such/ca.pem (the CA certificates), which cannot be read"),
    ("sentinel://:hunter2-m@s1:26379/0?sentinel_password=hunter2-s",
     "TRACKER_BROKER_URL: a sentinel:// URL names the master its Sentinels watch"),
])
def test_a_sentinel_broker_that_cannot_work_is_one_line_naming_the_variable_without_its_passwords(url, said):
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED, "TRACKER_BROKER_URL": url})
    message = str(caught.value)
    assert message.startswith(said) and "\n" not in message and "hunter2" not in message, message


@pytest.mark.parametrize(("url", "said"), [
    ("amqps://u:hunter2-amqp@rabbit/v?ssl_cert_reqs=sometimes",
     "TRACKER_BROKER_URL: ssl_cert_reqs is none, optional or required, got 'sometimes'"),
    ("amqps://u:hunter2-amqp@rabbit/v?ssl_check_hostname=perhaps",
     "TRACKER_BROKER_URL: ssl_check_hostname is true or false, got 'perhaps'"),
    ("amqps://u:hunter2-amqp@rabbit/v?ssl_ca_certs=/no/such/ca.pem",
     "TRACKER_BROKER_URL: ssl_ca_certs names /no/such/ca.pem (the CA certificates), which cannot be read"),
    ("amqps://u:hunter2-amqp@rabbit/v?ssl_password=hunter2-key",
     "TRACKER_BROKER_URL: an amqps:// URL takes the TLS options ssl_ca_certs, ssl_certfile, ssl_keyfile, "
     "ssl_cert_reqs, ssl_check_hostname, not ssl_password (py-amqp reads no encrypted key"),
    ("amqps://u:hunter2-amqp@rabbit/v?ssl_ca_path=/etc/ssl/certs", "not ssl_ca_path; got 'amqps://u:***@rabbit/v?"),
    ("amqp://u:hunter2-amqp@rabbit/v?ssl_ca_certs=/etc/ca.pem",
     "TRACKER_BROKER_URL: ssl_ca_certs is a TLS option, and only an amqps:// URL speaks TLS"),
    ("amqps://u:hunter2-amqp@rabbit:abc/v", "TRACKER_BROKER_URL has an invalid port"),
    ("amqpx://u:hunter2-amqp@rabbit/v", "TRACKER_BROKER_URL must be a redis://, amqp:// or amqps:// URL"),
])
def test_an_amqps_broker_that_cannot_work_is_one_line_naming_the_variable_without_its_password(url, said):
    with pytest.raises(ConfigError) as caught:
        load_settings({**REQUIRED, "TRACKER_BROKER_URL": url})
    message = str(caught.value)
    assert said in message and "\n" not in message and "hunter2" not in message, message


def test_an_amqps_brokers_files_are_loaded_at_start(tls, tmp_path):
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"^TRACKER_BROKER_URL: ssl_ca_certs .*ca.txt cannot be loaded: .*\(PEM "):
        load_settings({**REQUIRED, "TRACKER_BROKER_URL": f"amqps://u:p@rabbit/v?ssl_ca_certs={not_pem}"})
    other = f"amqps://u:p@rabbit/v?ssl_certfile={tls.client_cert}&ssl_keyfile={tls.server_key}"
    with pytest.raises(ConfigError, match=r"^TRACKER_BROKER_URL: ssl_certfile .* is not the certificate's$"):
        load_settings({**REQUIRED, "TRACKER_BROKER_URL": other})


# Events: the standard event normalised, and its log record read back


@pytest.mark.parametrize(("kind", "given", "expected"), [
    ("ticket.solved", "open", "solved"),
    ("ticket.closed", None, "closed"),
    ("ticket.reopened", "Closed", "open"),
    ("ticket.reopened", "pending", "pending"),
    ("ticket.created", None, "new"),
    ("ticket.updated", "Pending", "pending"),
    ("ticket.updated", "", None),
])
def test_a_ticket_event_leaves_the_status_its_type_implies(kind: str, given: str | None, expected: str | None):
    raw = {"type": kind, "id": "e1", "occurred_at": "2026-11-22T10:00:00Z", "customer": {"id": "c-1"},
           "ticket": {"id": "T-1", "status": given}}
    ticket = parse_event(raw, "standard").ticket
    assert ticket is not None and ticket.status == expected


def test_a_standard_event_becomes_an_event_with_empty_values_dropped_and_the_email_folded():
    raw = {"type": "order.refunded", "id": "e1", "occurred_at": "2026-11-22T10:00:00.250+01:00",
           "order": {"id": "O-1", "total": "20", "currency": "nok", "status": "anything"},
           "ticket": {"id": "ignored on an order event"},
           "customer": {"email": "Kari@Example.NO", "name": "Kari", "locale": None}}
    assert parse_event(raw, "shop") == Event(
        "order.refunded", "e1", "shop", 1795338000250, Customer(email="kari@example.no", name="Kari"),
        order=Order("O-1", "20.00", "NOK", "refunded"))
    raw = {"type": "ticket.solved", "id": "e2", "occurred_at": "2026-11-22T10:00:00Z", "customer": {"id": "c-1"},
           "ticket": {"id": "T-1", "subject": "", "team": None, "tags": ["vip"], "agent_involved": False,
                      "agent": {"id": "a-7", "name": "", "email": None}}}
    assert parse_event(raw, "standard").ticket == Ticket("T-1", status="solved", tags=("vip",),
                                                         agent=Agent("a-7"), agent_involved=False)


# Records exactly as earlier versions wrote them to the stream: they must keep applying, byte for byte.
STORED_RECORDS = [
    '{"at":1795860000000,"customer":{"email":"kari@example.no","id":"c-42","locale":"nb","name":"Kari"},'
    '"id":"evt_01","source":"standard","ticket":{"agent":{"email":"ola@acme.test","id":"a-7","name":"Ola"},'
    '"brand":"acme","channel":"email","id":"T-1001","status":"solved","subject":"Card declined","tags":["vip"],'
    '"team":"billing"},"type":"ticket.solved"}',
    '{"at":1795860000123,"customer":{"id":"381203941","timezone":"Europe/Oslo"},"id":"zd-1","source":"zendesk",'
    '"ticket":{"agent_involved":false,"id":"1001","status":"open","tags":[]},"type":"ticket.reopened"}',
    '{"at":1795860000000,"customer":{"email":"kari@example.no","name":""},"id":"r-1","order":{"currency":"NOK",'
    '"id":"O-77","status":"refunded","total":"20.00"},"source":"shopify","type":"order.refunded"}',
]


@pytest.mark.parametrize("payload", STORED_RECORDS)
def test_a_stored_log_record_reads_back_as_an_event_that_writes_the_same_record(payload: str):
    record = event_record(event_from_record(json.loads(payload)))
    assert json.dumps(record, separators=(",", ":"), sort_keys=True) == payload


def test_a_standard_event_and_its_log_record_read_back_are_the_same_event():
    event = parse_event(STANDARD_EVENT, "standard")
    assert event_from_record(json.loads(json.dumps(event_record(event)))) == event


STANDARD_EVENT = {"type": "ticket.solved", "id": "evt_01", "occurred_at": "2026-11-22T10:00:00Z",
                  "ticket": {"id": "T-1001", "subject": "Card declined", "status": "solved", "channel": "email",
                             "brand": "acme", "team": "billing", "tags": ["vip"], "agent_involved": True,
                             "agent": {"id": "a-7", "name": "Ola", "email": "ola@acme.test"}},
                  "customer": {"id": "c-42", "email": "kari@example.no", "name": "Kari", "locale": "nb",
                               "timezone": "Europe/Oslo"}}
GOOD_RECORD = json.loads(STORED_RECORDS[0])


@pytest.mark.parametrize(("record", "reason"), [
    ([GOOD_RECORD], "not an object"),
    ({**GOOD_RECORD, "type": "ticket.merged"}, "type must be one of"),
    ({**GOOD_RECORD, "id": ""}, "source and id are required"),
    ({**GOOD_RECORD, "at": "yesterday"}, "at must be epoch milliseconds"),
    ({**GOOD_RECORD, "at": True}, "at must be epoch milliseconds"),
    ({**GOOD_RECORD, "customer": {"name": "Kari"}}, "customer needs an email or an id"),
    ({**GOOD_RECORD, "customer": {"email": 42}}, "customer.email must be text"),
    ({**GOOD_RECORD, "ticket": None}, "ticket needs id"),
    ({**GOOD_RECORD, "ticket": {"id": "T-1", "tags": "vip"}}, "ticket.tags must be a list of text"),
    ({**GOOD_RECORD, "ticket": {"id": "T-1", "agent": {"name": "Ola"}}}, "ticket.agent needs an id"),
    ({**GOOD_RECORD, "ticket": {"id": "T-1", "agent_involved": "no"}}, "ticket.agent_involved must be"),
    ({**GOOD_RECORD, "type": "order.created", "order": {"id": "O-1", "total": "1.00"}}, "order needs id, total"),
    ({**GOOD_RECORD, "type": "order.created",
      "order": {"id": "O-1", "total": "NaN", "currency": "NOK", "status": "created"}}, "order total is not a number"),
])
def test_a_malformed_log_record_is_refused_with_its_reason(record: Any, reason: str):
    with pytest.raises(ValueError, match=reason):
        event_from_record(record)


@pytest.mark.parametrize("record", [{}, {"n": "3", "value6": "1"}, {"12": "7", "4051": "9"},
                                    {"n": "3", "12": "7", "email": "a@example.no"}, {"email": "a@example.no"},
                                    {"value6": "1", "o:standard:O-1": "paid|1000||EUR"}])
def test_a_profile_is_a_customers_own_through_a_field_beside_its_sums_and_marks(record: dict[str, str]) -> None:
    from tracker.store.sums import has_own_fields, own_fields

    assert has_own_fields(record) is bool(own_fields(record))
    assert has_own_fields(record) is any(not (name in {"n", "value6"} or name.isdigit()) for name in record)
