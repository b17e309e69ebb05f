"""Settings from the environment; the defaults give a working embedded system under ./data/."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECORDBANK_", extra="ignore")

    data_dir: Path = Path("./data")
    store_url: str = ""  # chdb:///abs/path or http(s)://user:pass@host:port/db
    database_url: str = ""  # sqlite:///… or postgresql://…
    redis_url: str = ""
    # Ingestion limits: bounded memory per batch, bounded decompressed size per file.
    batch_rows: int = Field(default=50_000, ge=100)
    # Let the engine read CSV/JSON/Parquet files itself (embedded store only: a ClickHouse
    # server cannot see this machine's files, so a server store always streams from Python).
    native_reads: bool = True
    max_decompressed_bytes: int = 50 * 1024**3
    max_compression_ratio: int = 200

    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"chdb://{(self.data_dir / 'store').resolve()}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'recordbank.db').resolve()}"

    @property
    def work_dir(self) -> Path:
        path = self.data_dir / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
