"""One settings object, read from the environment (prefix ``SGR_``).

Every field is documented in the README's settings table.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stores.files import data_files

Dialect = Literal["auto", "structured_outputs", "guided_json", "response_format"]
Durability = Literal["sync", "async", "exit"]
PricingStrategy = Literal["schedule", "model"]
Objective = Literal["margin", "conversion"]
Curve = Literal["linear", "boulware", "conceder"]

# What each objective picks when SGR_OPEN_SHARE / SGR_CONCESSION_CURVE are not set.
OBJECTIVE_DEFAULTS: dict[str, dict[str, object]] = {
    "margin": {"open_share": 0.4, "concession_curve": "boulware"},
    "conversion": {"open_share": 0.6, "concession_curve": "conceder"},
}


class Settings(BaseSettings):
    """Configuration of the negotiator: endpoint, storage, policy knobs."""

    model_config = SettingsConfigDict(env_prefix="SGR_", extra="ignore")

    # LLM endpoint
    llm_base_url: str = "http://localhost:8000/v1"
    llm_model: str = ""  # empty: the first model of GET /v1/models
    llm_api_key: str = "EMPTY"
    llm_timeout_s: float = 60.0
    llm_max_retries: int = Field(default=2, ge=0)  # retries of a call on 429/5xx/timeouts
    llm_retry_backoff_s: float = Field(default=0.5, ge=0)  # first backoff, doubled per retry
    llm_retry_max_wait_s: float = Field(default=10.0, ge=0)  # cap on backoff and Retry-After
    llm_max_tokens: int = 768
    llm_temperature: float = 0.0
    llm_repetition_penalty: float | None = None  # vLLM sampling extra; unset: not sent
    structured_output: Dialect = "auto"
    verify_constraint: bool = True  # probe once per process that the server enforces schemas
    probe_retry_s: float = Field(default=60.0, ge=0)  # a failed probe is asked again after this
    probe_cache_s: float = Field(default=600.0, ge=0)  # a passed probe is remembered this long

    # storage: SQLite files in data_dir, or everything in Postgres (SGR_DATABASE_URL)
    data_dir: Path = Path("./data")
    checkpoint_db: Path | None = None  # default: $SGR_DATA_DIR/checkpoints.sqlite
    database_url: str | None = None  # postgresql://...: checkpoints, ledger, leases, stores

    # conversation limits
    max_rounds: int = Field(default=3, ge=0)
    max_message_chars: int = Field(default=4000, ge=1)
    max_turns: int = Field(default=30, ge=1)  # then the session is closed politely

    # sessions: one turn at a time, durable checkpoints
    session_lease_s: float = Field(default=30.0, gt=0)  # renewed while the turn runs
    session_wait_s: float = Field(default=0.0, ge=0)  # 0: a busy session fails at once
    checkpoint_durability: Durability = "sync"

    # the shop's words (nodes/replies.py, prompts/replies.toml)
    shop_name: str = "Our shop"  # the pages' headers
    shop_language: str = (
        "en"  # ISO 639-1: the templates' language (replies may follow the customer)
    )
    support_text: str = (
        "You can see your order status and start a return under My orders, or reach our "
        "support team from the Help page."
    )
    replies_path: Path | None = None  # a TOML file replacing prompts/replies.toml's texts

    # the HTTP service (discount-manager serve)
    shop_secret: str = ""  # HS256 key the shop's backend signs shopper JWTs with
    manager_tokens: str = ""  # comma-separated tokens of managers and analysts
    token_ttl_s: int = Field(default=900, gt=0)  # lifetime of `discount-manager token`
    allowed_origins: str = ""  # comma-separated origins allowed by CORS (none by default)
    max_body_bytes: int = Field(default=16_384, gt=0)  # larger request bodies get 413
    session_rate_limit: int = Field(default=20, ge=1)  # turns per session per window
    rate_window_s: float = Field(default=60.0, gt=0)

    # negotiation strategy (graph/policy.py: the concession schedule)
    pricing_strategy: PricingStrategy = "schedule"  # "model": the model picks up to the cap
    objective: Objective = "margin"  # picks open_share / concession_curve when unset
    open_share: float = Field(default=0.4, gt=0, le=1)
    concession_curve: Curve = "boulware"
    min_step: float = Field(default=1.0, ge=0.5)
    concession_cues_path: Path | None = None  # default: nodes/concession_cues.json

    # policy knobs (share of margin the customer may get)
    churn_high: float = 0.7
    churn_low: float = 0.3
    share_high_churn: float = 0.50
    share_mid_churn: float = 0.25
    share_low_churn: float = 0.10
    ltv_bonus_threshold: float = 2000.0
    ltv_bonus_share: float = 0.10
    max_share: float = 0.50
    low_inventory_factor: float = 0.5
    critical_inventory_factor: float = 0.0
    low_churn_max_percent: float = 5.0
    max_discount_amount: float = 150.0

    # offers (ledger, approvals)
    offer_ttl_hours: float = 48.0
    approval_percent: float = 15.0
    approval_amount: float = 100.0

    # local CPU model server (discount-manager local-llm)
    local_llm_dir: Path = Path("./.local-llm")
    local_llm_host: str = "127.0.0.1"
    local_llm_port: int = 8000
    local_llm_start_timeout_s: float = 600.0

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        if self.shop_secret and len(self.shop_secret) < 32:
            raise ValueError("SGR_SHOP_SECRET must be at least 32 characters (HS256 key)")
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("SGR_DATABASE_URL must be a postgresql:// URL")
        return self

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if self.checkpoint_db is None:
            self.checkpoint_db = self.data_dir / "checkpoints.sqlite"
        for name, value in OBJECTIVE_DEFAULTS[self.objective].items():
            if name not in self.model_fields_set:
                object.__setattr__(self, name, value)
        return self

    def with_data_dir(self, data_dir: Path | str) -> Settings:
        """A copy on another (throwaway) data dir of SQLite files, its checkpoint DB derived
        again from it: the demo, the simulator and the benches never touch the deployment's
        database (``SGR_DATABASE_URL`` is dropped)."""
        return Settings.model_validate(
            {
                **self.model_dump(),
                "data_dir": Path(data_dir),
                "checkpoint_db": None,
                "database_url": None,
            }
        )

    def with_paths_absolute(self) -> Settings:
        """A copy whose data dir and checkpoint DB are absolute paths."""
        assert self.checkpoint_db is not None
        return self.model_copy(
            update={
                "data_dir": self.data_dir.expanduser().absolute(),
                "checkpoint_db": Path(self.checkpoint_db).expanduser().absolute(),
            }
        )

    @property
    def manager_token_list(self) -> list[str]:
        """``SGR_MANAGER_TOKENS`` split at commas, blanks dropped."""
        return [t.strip() for t in self.manager_tokens.split(",") if t.strip()]

    @property
    def allowed_origin_list(self) -> list[str]:
        """``SGR_ALLOWED_ORIGINS`` split at commas, blanks dropped."""
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]

    @property
    def hot_db(self) -> Path:
        """SQLite hot store (live sessions)."""
        return data_files(self.data_dir).hot

    @property
    def cold_db(self) -> Path:
        """DuckDB cold store (customer analytics)."""
        return data_files(self.data_dir).cold

    @property
    def ledger_db(self) -> Path:
        """SQLite offer ledger (never touched by ``setup-data``)."""
        return data_files(self.data_dir).ledger

    @property
    def server_root(self) -> str:
        """The endpoint without its ``/v1`` suffix (where vLLM serves ``/version``)."""
        url = self.llm_base_url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` instead)."""
    return Settings()
