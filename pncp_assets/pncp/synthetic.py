"""Deterministic, realistic PNCP records for any day, from a seed: the simulator's data.

Shaped exactly like `/v1/contratacoes/publicacao` records (same 35 keys, JSON types and nesting as
real samples), with the real volumes per modalidade, publication times over the Brasília day, IDs in
the real mask from plausible CNPJs (some alphanumeric), and the real share of nulls and empty lists.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from pncp_assets.pncp.records import MODALIDADE_NAMES

# Share of a day's records per modalidade, like the real feed: Dispensa, Pregão-Eletrônico and
# Inexigibilidade dominate; several modalidades have nothing on most days.
MODALIDADE_WEIGHTS: dict[int, float] = {
    8: 46.0, 6: 24.0, 9: 19.0, 4: 3.2, 12: 2.6, 7: 0.8, 1: 0.6, 5: 0.4, 14: 1.2, 15: 0.5,
    3: 0.15, 13: 0.3, 11: 0.1, 10: 0.05, 2: 0.02, 16: 0.01, 18: 0.02,
}
UFS = [("São Paulo", "SP", "São Paulo", "3550308"), ("Minas Gerais", "MG", "Belo Horizonte", "3106200"),
       ("Paraná", "PR", "Medianeira", "4115804"), ("Rio Grande do Sul", "RS", "Sapucaia do Sul", "4320008"),
       ("Bahia", "BA", "Salvador", "2927408"), ("Pernambuco", "PE", "Recife", "2611606"),
       ("Goiás", "GO", "Goiânia", "5208707"), ("Santa Catarina", "SC", "Joinville", "4209102"),
       ("Pará", "PA", "Belém", "1501402"), ("Ceará", "CE", "Fortaleza", "2304400")]
AMPAROS = [(1, "Lei 14.133/2021, Art. 28, I", "pregão"), (2, "Lei 14.133/2021, Art. 28, II", "concorrência"),
           (18, "Lei 14.133/2021, Art. 75, II", "dispensa por valor"),
           (38, "Lei 14.133/2021, Art. 74, caput", "inexigibilidade")]
OBJETOS = ["AQUISIÇÃO DE MATERIAL DE EXPEDIENTE", "Contratação de empresa para serviços de manutenção predial",
           "Aquisição de medicamentos para a rede municipal de saúde", "Locação de imóvel para a secretaria",
           "Prestação de serviços de transporte escolar", "Aquisição de gêneros alimentícios — merenda escolar",
           "Credenciamento de profissionais de saúde", "Contratação de show artístico para festa do município"]


def cnpj_check_digits(base12: str) -> str:
    """The two check digits of a numeric CNPJ (modulo 11)."""
    def digit(digits: str, weights: list[int]) -> str:
        total = sum(int(d) * w for d, w in zip(digits, weights, strict=True))
        rest = total % 11
        return "0" if rest < 2 else str(11 - rest)

    first = digit(base12, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    return first + digit(base12 + first, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])


def make_cnpj(rng: random.Random, alphanumeric: bool = False) -> str:
    if alphanumeric:  # the alphanumeric CNPJ of 2026: letters in the root, numeric check digits
        alphabet = string.digits + string.ascii_uppercase
        return "".join(rng.choice(alphabet) for _ in range(8)) + "0001" + f"{rng.randrange(100):02d}"
    base = f"{rng.randrange(10**8):08d}000{rng.randrange(1, 10)}"
    return base + cnpj_check_digits(base)


@dataclass(frozen=True)
class Update:
    """One change of a published record: at `at` (naive Brasília time) these fields take these values."""

    at: dt.datetime
    changes: dict


@dataclass(frozen=True)
class SyntheticRecord:
    record: dict  # as first published
    published: dt.datetime  # naive Brasília time, = dataPublicacaoPncp
    visible_from: dt.datetime  # naive Brasília time: the API shows it from then on (late records later)
    sort_key: int  # the API's undocumented order
    updates: tuple[Update, ...] = ()  # in time order

    def version_at(self, now: dt.datetime | None) -> dict:
        """The record as the API shows it at `now` (the latest version; None: every update applied)."""
        applied = [u for u in self.updates if now is None or u.at <= now]
        if not applied:
            return self.record
        version = dict(self.record)
        for update in applied:
            version.update(update.changes)
        return version


def updates_for(record: dict, published: dt.datetime, seed: int, fraction: float, max_days: float,
                max_count: int) -> tuple[Update, ...]:
    """The changes a record goes through after publication, deterministic for (seed, ID): a `fraction`
    of records change 1 to `max_count` times within `max_days`. Some changes are the record's own
    (`dataAtualizacao` and `dataAtualizacaoGlobal` move); others touch its items or documents (only
    `dataAtualizacaoGlobal` moves, as on the real API). A record not yet homologated is homologated by
    its last change (`valorTotalHomologado` appears)."""
    rid = record.get("numeroControlePNCP")
    rng = random.Random(f"pncp-updates:{seed}:{rid}")
    if not fraction or not isinstance(rid, str) or rng.random() >= fraction:
        return ()
    count = rng.randint(1, max_count)
    offsets = sorted(rng.uniform(3600, max_days * 86400) for _ in range(count))
    updates = []
    for n, offset in enumerate(offsets, start=1):
        at = (published + dt.timedelta(seconds=offset)).replace(microsecond=0)
        changes: dict = {"dataAtualizacaoGlobal": _ts(at)}
        if n == count and record["valorTotalHomologado"] is None:
            changes.update(dataAtualizacao=_ts(at), situacaoCompraId=1, situacaoCompraNome="Divulgada no PNCP",
                           valorTotalHomologado=round(float(record["valorTotalEstimado"]) * rng.uniform(0.7, 1.0), 2))
        elif rng.random() < 0.5:  # the record's own change: an amended description
            changes.update(dataAtualizacao=_ts(at), informacaoComplementar=f"Retificação {n} do edital.")
        updates.append(Update(at, changes))
    return tuple(updates)


def records_per_day(day: dt.date, business_day_volume: int) -> int:
    """About 6,000 on a business day, fewer at weekends (real ratio roughly 1/4)."""
    return business_day_volume if day.weekday() < 5 else max(1, business_day_volume // 4)


def generate_day(
    day: dt.date, seed: int = 0, volume: int | None = None, late_fraction: float = 0.0, late_hours: float = 3.0,
    late_hours_max: float | None = None, update_fraction: float = 0.0, update_max_days: float = 14.0,
    updates_max: int = 3, late_updated_at: str = "publication",
) -> list[SyntheticRecord]:
    """The whole day's records, deterministic for (day, seed). A late record becomes visible `late_hours`
    after its publication, or between `late_hours` and `late_hours_max` when that is set (days, for a record
    backdated into its day); its first `dataAtualizacaoGlobal` is near its publication, or with
    `late_updated_at="insertion"` the moment it was inserted (the real API's choice is not known). Records
    change after publication as `updates_for` says (none unless `update_fraction`; for a record stamped at its
    insertion, only after it)."""
    if late_updated_at not in ("publication", "insertion"):
        raise ValueError(f"late_updated_at {late_updated_at!r}: use publication or insertion")
    rng = random.Random(f"pncp-sim:{seed}:{day.isoformat()}")
    count = volume if volume is not None else records_per_day(day, 6000)
    codes = list(MODALIDADE_WEIGHTS)
    weights = [MODALIDADE_WEIGHTS[c] for c in codes]
    orgaos = [(make_cnpj(rng, alphanumeric=rng.random() < 0.03), rng.choice(UFS)) for _ in range(max(20, count // 8))]
    sequences: dict[str, int] = {}
    out: list[SyntheticRecord] = []
    for _ in range(count):
        modalidade = rng.choices(codes, weights)[0]
        cnpj, uf = rng.choice(orgaos)
        sequences[cnpj] = sequences.get(cnpj, rng.randrange(1, 400)) + 1
        # Business hours carry most of the volume; nights a little.
        hour = min(23, max(0, int(rng.gauss(13, 4.5)))) if rng.random() < 0.9 else rng.randrange(24)
        published = dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60)))
        record = _record(rng, day, cnpj, uf, sequences[cnpj], modalidade, published)
        late = rng.random() < late_fraction
        delay = late_hours
        if late and late_hours_max is not None:  # a generator of its own: the day's data stays the same
            spread = random.Random(f"pncp-late:{seed}:{record['numeroControlePNCP']}").random()
            delay = late_hours + (late_hours_max - late_hours) * spread
        visible = published + dt.timedelta(hours=delay) if late else published
        changed_from = published
        if late and late_updated_at == "insertion":
            record["dataAtualizacaoGlobal"] = _ts(visible.replace(microsecond=0))
            changed_from = visible
        updates = updates_for(record, changed_from, seed, update_fraction, update_max_days, updates_max)
        out.append(SyntheticRecord(record, published, visible, rng.getrandbits(48), updates))
    return out


def _ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _record(rng: random.Random, day: dt.date, cnpj: str, uf: tuple, seq: int, modalidade: int,
            published: dt.datetime) -> dict:
    uf_nome, uf_sigla, municipio, ibge = uf
    year = day.year
    amparo = rng.choice(AMPAROS)
    estimated: float | int = round(rng.lognormvariate(10.5, 1.8), 2) if rng.random() > 0.08 else 0.0
    if rng.random() < 0.1:
        estimated = int(estimated)  # the API sends integers for some amounts
    homologated = None if rng.random() < 0.8 else round(float(estimated) * rng.uniform(0.7, 1.0), 2)
    unidade = {"ufNome": uf_nome, "codigoUnidade": str(rng.randrange(1, 999999)),
               "nomeUnidade": f"PREFEITURA MUNICIPAL DE {municipio.upper()}", "ufSigla": uf_sigla,
               "municipioNome": municipio, "codigoIbge": ibge}
    orgao = {"cnpj": cnpj, "razaoSocial": f"MUNICIPIO DE {municipio.upper()}",
             "poderId": rng.choice(["E", "E", "E", "L", "N"]), "esferaId": rng.choice(["M", "M", "E", "F"])}
    sub_rogado = rng.random() < 0.03
    fontes = [] if rng.random() < 0.9 else [
        {"codigo": rng.randrange(1, 9), "nome": "Recursos próprios", "descricao": "Fonte do tesouro municipal",
         "dataInclusao": _ts(published)}]
    updated = published + dt.timedelta(seconds=rng.randrange(0, 3600))
    opening = published + dt.timedelta(days=rng.randrange(0, 20), hours=rng.randrange(0, 9))
    record = {
        "srp": rng.random() < 0.35,
        "orgaoEntidade": orgao,
        "anoCompra": year,
        "sequencialCompra": seq,
        "dataInclusao": _ts(published),
        "dataPublicacaoPncp": _ts(published),
        "dataAtualizacao": _ts(updated),
        "numeroCompra": f"{rng.randrange(1, 999):04d}" if rng.random() < 0.7 else str(rng.randrange(1, 99)),
        "unidadeOrgao": unidade,
        "amparoLegal": {"descricao": f"{amparo[2]}: fundamento legal", "nome": amparo[1], "codigo": amparo[0]},
        "dataAberturaProposta": _ts(opening) if rng.random() < 0.85 else None,
        "dataEncerramentoProposta": _ts(opening + dt.timedelta(days=rng.randrange(1, 30)))
        if rng.random() < 0.85 else None,
        "informacaoComplementar": "" if rng.random() < 0.6 else "Informações no edital.",
        "processo": str(rng.randrange(1, 999999)),
        "objetoCompra": rng.choice(OBJETOS),
        "linkSistemaOrigem": None if rng.random() < 0.3 else f"https://compras.example.gov.br/{seq}",
        "justificativaPresencial": None if rng.random() < 0.95 else "Licitação presencial justificada.",
        "unidadeSubRogada": dict(unidade) if sub_rogado else None,
        "orgaoSubRogado": dict(orgao) if sub_rogado else None,
        "valorTotalHomologado": homologated,
        "numeroControlePNCP": f"{cnpj}-1-{seq:06d}/{year}",
        "modalidadeId": modalidade,
        "dataAtualizacaoGlobal": _ts(updated),
        "linkProcessoEletronico": None if rng.random() < 0.7 else f"https://processo.example.gov.br/{seq}",
        "modoDisputaId": rng.choice([1, 2, 3, 4, 5]),
        "valorTotalEstimado": estimated,
        "modalidadeNome": MODALIDADE_NAMES[modalidade],
        "modoDisputaNome": "Aberto",
        "tipoInstrumentoConvocatorioCodigo": rng.choice([1, 2, 3]),
        "tipoInstrumentoConvocatorioNome": "Edital",
        "fontesOrcamentarias": fontes,
        "situacaoCompraId": rng.choice([1, 1, 1, 2, 3, 4]),
        "situacaoCompraNome": "Divulgada no PNCP",
        "usuarioNome": "Sistema de Compras Municipal",
    }
    if rng.random() < 0.7:  # newer field: absent from older records, null in the others
        record["emendaParlamentar"] = None
    return record


# --- Contratos and atas: signed out of the world's contratações -----------------------------------

# Contratos and atas point at a contratação of the same world: most of the last two weeks, some of a day
# long before any pipeline's start (Bronze cannot hold those; the links check reports them).
OLD_DAY = dt.date(2024, 6, 3)
OLD_SHARE = 0.05
TIPOS_CONTRATO = [(1, "Contrato (termo inicial)"), (7, "Empenho"), (12, "Carta-contrato")]
CATEGORIAS = [(2, "Compras"), (8, "Serviços"), (4, "Obras")]
FORNECEDORES = ["COMERCIAL SANTOS LTDA", "DISTRIBUIDORA NORTE EIRELI", "SERVIÇOS GERAIS BRASIL LTDA",
                "CONSTRUTORA HORIZONTE S.A.", "MEDIFARMA COMERCIO DE MEDICAMENTOS LTDA"]


def _referenced(rng: random.Random, day: dt.date, contratacoes_of: Callable[[dt.date], list[SyntheticRecord]],
                pools: dict[dt.date, list[SyntheticRecord]], srp_only: bool = False) -> SyntheticRecord | None:
    """The contratação a contrato or ata of `day` points at (`pools`: the candidates of each day, kept for
    the whole day's generation)."""
    ref_day = OLD_DAY if rng.random() < OLD_SHARE else day - dt.timedelta(days=min(14, int(rng.expovariate(1 / 4))))
    if ref_day not in pools:
        pool = [r for r in contratacoes_of(ref_day) if r.published.date() < day or r.published <= _noon(day)]
        pools[ref_day] = ([r for r in pool if r.record.get("srp")] or pool) if srp_only else pool
    pool = pools[ref_day]
    return rng.choice(pool) if pool else None


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12))


def _published_after(rng: random.Random, day: dt.date, after: dt.datetime) -> dt.datetime:
    """A publication time on `day`, business hours mostly, never before `after` (its contratação)."""
    hour = min(23, max(0, int(rng.gauss(14, 4)))) if rng.random() < 0.9 else rng.randrange(24)
    moment = dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60)))
    if moment <= after:
        moment = min(after + dt.timedelta(minutes=rng.randrange(1, 120)), dt.datetime.combine(day, dt.time(23, 59, 59)))
    return moment


def generate_contratos(day: dt.date, seed: int, count: int,
                       contratacoes_of: Callable[[dt.date], list[SyntheticRecord]], update_fraction: float = 0.0,
                       update_max_days: float = 14.0, updates_max: int = 3, late_fraction: float = 0.0,
                       late_hours: float = 3.0) -> list[SyntheticRecord]:
    """The contratos published on `day`, deterministic for (day, seed), each signed out of a contratação of
    the same world; a share of them amended later (`numeroRetificacao`, `valorGlobal`, `dataVigenciaFim`),
    and a share (`late_fraction`) shown only `late_hours` after their publication, as contratações are."""
    rng = random.Random(f"pncp-contratos:{seed}:{day.isoformat()}")
    out: list[SyntheticRecord] = []
    ids: set[str] = set()
    pools: dict[dt.date, list[SyntheticRecord]] = {}
    for _ in range(count):
        compra = _referenced(rng, day, contratacoes_of, pools)
        if compra is None:
            continue
        c = compra.record
        published = _published_after(rng, day, compra.published)
        cnpj = c["orgaoEntidade"]["cnpj"]
        seq = rng.randrange(1, 999999)
        rid = f"{cnpj}-2-{seq:06d}/{day.year}"
        if rid in ids:
            continue
        ids.add(rid)
        value = round(float(c["valorTotalHomologado"] or c["valorTotalEstimado"] or 1000.0) * rng.uniform(0.5, 1.0), 2)
        parcelas = rng.choice([1, 1, 1, 6, 12])
        tipo, categoria = rng.choice(TIPOS_CONTRATO), rng.choice(CATEGORIAS)
        signed = published.date() - dt.timedelta(days=rng.randrange(0, 5))
        record = {
            "numeroControlePncpCompra": c["numeroControlePNCP"], "codigoPaisFornecedor": "BRA",
            "anoContrato": day.year, "tipoContrato": {"id": tipo[0], "nome": tipo[1]},
            "numeroContratoEmpenho": f"{rng.randrange(1, 9999):04d}/{day.year}",
            "dataAssinatura": signed.isoformat(), "dataVigenciaInicio": signed.isoformat(),
            "dataVigenciaFim": (signed + dt.timedelta(days=rng.choice([90, 180, 365, 730]))).isoformat(),
            "niFornecedor": make_cnpj(rng), "tipoPessoa": "PJ", "orgaoEntidade": dict(c["orgaoEntidade"]),
            "categoriaProcesso": {"id": categoria[0], "nome": categoria[1]},
            "dataPublicacaoPncp": _ts(published), "dataAtualizacao": _ts(published), "sequencialContrato": seq,
            "unidadeOrgao": dict(c["unidadeOrgao"]), "informacaoComplementar": None, "processo": c["processo"],
            "unidadeSubRogada": None, "orgaoSubRogado": None,
            "nomeRazaoSocialFornecedor": rng.choice(FORNECEDORES), "niFornecedorSubContratado": None,
            "nomeFornecedorSubContratado": None, "numeroControlePNCP": rid, "receita": False,
            "numeroParcelas": parcelas, "numeroRetificacao": 0, "tipoPessoaSubContratada": None,
            "objetoContrato": c["objetoCompra"], "valorInicial": value, "valorParcela": round(value / parcelas, 2),
            "valorGlobal": value, "valorAcumulado": value, "dataAtualizacaoGlobal": _ts(published),
            "identificadorCipi": None, "urlCipi": None, "usuarioNome": "Contratos.gov.br",
        }
        updates = _amendments(record, published, seed, update_fraction, update_max_days, updates_max)
        out.append(SyntheticRecord(record, published, _shown_from(seed, rid, published, late_fraction, late_hours),
                                   rng.getrandbits(48), updates))
    return out


def _shown_from(seed: int, rid: str, published: dt.datetime, late_fraction: float, late_hours: float) -> dt.datetime:
    """When the API starts showing a record: at publication, or `late_hours` later for a late one (a generator
    of its own, so that the day's data is the same with or without late records)."""
    late = late_fraction and random.Random(f"pncp-late:{seed}:{rid}").random() < late_fraction
    return published + dt.timedelta(hours=late_hours) if late else published


def _amendments(record: dict, published: dt.datetime, seed: int, fraction: float, max_days: float,
                max_count: int) -> tuple[Update, ...]:
    """A contrato's termos aditivos: each a retification that extends it and raises its value."""
    rng = random.Random(f"pncp-amendments:{seed}:{record['numeroControlePNCP']}")
    if not fraction or rng.random() >= fraction:
        return ()
    offsets = sorted(rng.uniform(3600, max_days * 86400) for _ in range(rng.randint(1, max_count)))
    updates, value, end = [], float(record["valorGlobal"]), dt.date.fromisoformat(record["dataVigenciaFim"])
    for n, offset in enumerate(offsets, start=1):
        at = (published + dt.timedelta(seconds=offset)).replace(microsecond=0)
        value, end = round(value * rng.uniform(1.0, 1.25), 2), end + dt.timedelta(days=90)
        updates.append(Update(at, {"numeroRetificacao": n, "valorGlobal": value, "valorAcumulado": value,
                                   "dataVigenciaFim": end.isoformat(), "dataAtualizacao": _ts(at),
                                   "dataAtualizacaoGlobal": _ts(at)}))
    return tuple(updates)


def generate_atas(day: dt.date, seed: int, count: int, contratacoes_of: Callable[[dt.date], list[SyntheticRecord]],
                  update_fraction: float = 0.0, update_max_days: float = 14.0) -> list[SyntheticRecord]:
    """The atas de registro de preço published on `day`, each out of a contratação (a price registration,
    `srp`, where there is one); a share of them changed later, some cancelled."""
    rng = random.Random(f"pncp-atas:{seed}:{day.isoformat()}")
    out: list[SyntheticRecord] = []
    ids: set[str] = set()
    pools: dict[dt.date, list[SyntheticRecord]] = {}
    for _ in range(count):
        compra = _referenced(rng, day, contratacoes_of, pools, srp_only=True)
        if compra is None:
            continue
        c = compra.record
        published = _published_after(rng, day, compra.published)
        rid = f"{c['numeroControlePNCP']}-{rng.randrange(1, 99999):05d}"
        if rid in ids:
            continue
        ids.add(rid)
        signed = dt.datetime.combine(published.date(), dt.time(0))
        record = {
            "numeroControlePNCPAta": rid, "numeroAtaRegistroPreco": f"{rng.randrange(1, 999):03d}/{day.year}",
            "anoAta": day.year, "numeroControlePNCPCompra": c["numeroControlePNCP"], "cancelado": False,
            "dataCancelamento": None, "dataAssinatura": _ts(signed), "vigenciaInicio": _ts(signed),
            "vigenciaFim": _ts(signed + dt.timedelta(days=365)), "dataPublicacaoPncp": _ts(published),
            "dataInclusao": _ts(published), "dataAtualizacao": _ts(published), "dataAtualizacaoGlobal": _ts(published),
            "usuario": "Sistema de Compras Municipal", "objetoContratacao": c["objetoCompra"],
            "cnpjOrgao": c["orgaoEntidade"]["cnpj"], "nomeOrgao": c["orgaoEntidade"]["razaoSocial"],
            "cnpjOrgaoSubrogado": None, "nomeOrgaoSubrogado": None,
            "codigoUnidadeOrgao": c["unidadeOrgao"]["codigoUnidade"],
            "nomeUnidadeOrgao": c["unidadeOrgao"]["nomeUnidade"],
            "codigoUnidadeOrgaoSubrogado": None, "nomeUnidadeOrgaoSubrogado": None,
        }
        updates: tuple[Update, ...] = ()
        change = random.Random(f"pncp-ata-changes:{seed}:{rid}")
        if update_fraction and change.random() < update_fraction:
            offset = dt.timedelta(seconds=change.uniform(3600, update_max_days * 86400))
            at = (published + offset).replace(microsecond=0)
            changes: dict = {"dataAtualizacaoGlobal": _ts(at)}
            if change.random() < 0.3:  # cancelled
                changes.update(cancelado=True, dataCancelamento=_ts(at), dataAtualizacao=_ts(at))
            updates = (Update(at, changes),)
        out.append(SyntheticRecord(record, published, published, rng.getrandbits(48), updates))
    return out
