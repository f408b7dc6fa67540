"""Per-process resources for Celery tasks, built lazily from settings inside each worker
child (never in the parent before fork) and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import httpx
import redis
from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.admission.options import AdmissionOptions
from dispatcher.admission.pipeline import Admission
from dispatcher.alerts import Alerter
from dispatcher.intake.validate import IntakeLimits
from dispatcher.providers import CallProvider, ProviderOptions, provider_from_options
from dispatcher.reconciler import Reconciler
from shared.coordination import (
    AdmissionGates,
    AlertThrottle,
    ChannelLeases,
    MediaSlots,
    RateLimiter,
)
from shared.db.session import make_engine, make_session_factory
from shared.fleet_metrics import FleetCounters
from shared.redis_clients import sync_redis
from shared.settings import Settings


@dataclass
class WorkerContext:
    settings: Settings
    # Tests and benchmarks hand in a provider; production builds one from settings.
    provider_override: CallProvider | None = None

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings, pool_size=5)

    @cached_property
    def admission_engine(self) -> Engine:
        # No pre-ping: admission handles a dead pooled connection itself, one round trip less.
        return make_engine(self.settings, pool_size=2, pre_ping=False)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def redis(self) -> redis.Redis:
        return sync_redis(self.settings.redis_url)

    @cached_property
    def counters(self) -> FleetCounters:
        return FleetCounters(self.redis)

    @cached_property
    def http(self) -> httpx.Client:
        return httpx.Client(timeout=self.settings.webhook_timeout_s, follow_redirects=False)

    @cached_property
    def limits(self) -> IntakeLimits:
        return IntakeLimits.from_settings(self.settings)

    @cached_property
    def channels(self) -> ChannelLeases:
        return ChannelLeases(self.redis)

    @cached_property
    def slots(self) -> MediaSlots:
        return MediaSlots(self.redis)

    @cached_property
    def provider(self) -> CallProvider:
        if self.provider_override is not None:
            return self.provider_override
        return provider_from_options(ProviderOptions.from_settings(self.settings))

    @cached_property
    def alerter(self) -> Alerter:
        url = self.settings.alert_webhook_url
        return Alerter(
            AlertThrottle(self.redis),
            slack_webhook_url=url.get_secret_value() if url else None,
            client=self.http,
        )

    @cached_property
    def admission(self) -> Admission:
        return Admission(
            engine=self.admission_engine,
            sessions=self.sessions,
            limiter=RateLimiter(self.redis),
            channels=self.channels,
            slots=self.slots,
            gates=AdmissionGates(self.redis),
            provider=self.provider,
            alerter=self.alerter,
            options=AdmissionOptions.from_settings(self.settings),
        )

    @cached_property
    def reconciler(self) -> Reconciler:
        return Reconciler(
            sessions=self.sessions,
            provider=self.provider,
            channels=self.channels,
            slots=self.slots,
            dial_unconfirmed_grace_s=self.settings.dial_unconfirmed_grace_s,
            call_max_duration_s=self.settings.call_max_duration_s,
            queued_stale_s=self.settings.queued_stale_s,
            ended_unfinalized_grace_s=3 * self.settings.conversation_report_grace_s,
        )

    def close(self) -> None:
        if "counters" in self.__dict__:
            self.__dict__.pop("counters").flush()
        closers = (
            ("engine", "dispose"),
            ("admission_engine", "dispose"),
            ("redis", "close"),
            ("http", "close"),
        )
        for name, closer in closers:
            if name in self.__dict__:
                getattr(self.__dict__.pop(name), closer)()
        for name in ("sessions", "channels", "slots", "alerter", "admission", "reconciler"):
            self.__dict__.pop(name, None)

    @staticmethod
    def attach(celery: Celery, context: WorkerContext) -> None:
        celery.conf.callfleet_context = context

    @staticmethod
    def of(celery: Celery) -> WorkerContext:
        context = celery.conf.callfleet_context
        assert isinstance(context, WorkerContext)
        return context
