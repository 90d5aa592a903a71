"""The platform catalogue: regions, instance sizes and (deprecated) tiers.

Values follow DigitalOcean's published pricing and the OpenAPI examples
(see ``do-app-platform.md`` §7). Numbers that DigitalOcean sends as int64 are strings on the wire.
Pure data: the spec rules use it (sizes that are single-instance-only, prices for ``app_cost``)
and the API serves it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

GIB = 1024**3
DEFAULT_REGION = "nyc"
DEFAULT_INSTANCE_SIZE = "apps-s-1vcpu-0.5gb"
SECONDS_PER_MONTH = 2419200  # DigitalOcean bills per second with a 28-day monthly cap


@dataclass(frozen=True)
class Region:
    slug: str
    label: str
    flag: str
    continent: str
    data_centers: tuple[str, ...]
    default: bool = False

    def as_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "slug": self.slug,
            "label": self.label,
            "flag": self.flag,
            "continent": self.continent,
            "data_centers": list(self.data_centers),
        }
        if self.default:
            wire["default"] = True
        return wire


@dataclass(frozen=True)
class InstanceSize:
    slug: str
    name: str
    cpu_type: str
    cpus: int
    memory_bytes: int
    usd_per_month: str
    usd_per_second: str
    tier_slug: str
    single_instance_only: bool
    scalable: bool
    bandwidth_allowance_gib: int
    deprecation_intent: bool = False
    tier_upgrade_to: str | None = None  # the same shape on the higher tier (deprecated fields, still sent)
    tier_downgrade_to: str | None = None

    def as_wire(self) -> dict[str, Any]:
        wire = {
            "name": self.name,
            "slug": self.slug,
            "cpu_type": self.cpu_type,
            "cpus": str(self.cpus),
            "memory_bytes": str(self.memory_bytes),
            "usd_per_month": self.usd_per_month,
            "usd_per_second": self.usd_per_second,
            "tier_slug": self.tier_slug,
            "single_instance_only": self.single_instance_only,
            "scalable": self.scalable,
            "bandwidth_allowance_gib": str(self.bandwidth_allowance_gib),
            "deprecation_intent": self.deprecation_intent,
        }
        if self.tier_upgrade_to:
            wire["tier_upgrade_to"] = self.tier_upgrade_to
        if self.tier_downgrade_to:
            wire["tier_downgrade_to"] = self.tier_downgrade_to
        return wire


@dataclass(frozen=True)
class Tier:
    slug: str
    name: str
    egress_bandwidth_bytes: int
    build_seconds: int

    def as_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "slug": self.slug,
            "egress_bandwidth_bytes": str(self.egress_bandwidth_bytes),
            "build_seconds": str(self.build_seconds),
        }


REGIONS: tuple[Region, ...] = (
    Region("ams", "Amsterdam", "netherlands", "Europe", ("ams3",)),
    Region("nyc", "New York", "usa", "North America", ("nyc1", "nyc3"), default=True),
    Region("fra", "Frankfurt", "germany", "Europe", ("fra1",)),
    Region("sfo", "San Francisco", "usa", "North America", ("sfo3",)),
    Region("sgp", "Singapore", "singapore", "Asia", ("sgp1",)),
    Region("blr", "Bangalore", "india", "Asia", ("blr1",)),
    Region("tor", "Toronto", "canada", "North America", ("tor1",)),
    Region("lon", "London", "uk", "Europe", ("lon1",)),
    Region("syd", "Sydney", "australia", "Australia", ("syd1",)),
    Region("atl", "Atlanta", "usa", "North America", ("atl1",)),
)


def _size(slug: str, name: str, cpu_type: str, cpus: int, mem_gib: float, usd: str, tier: str,
          single: bool, scalable: bool, bw: int, deprecated: bool = False) -> InstanceSize:
    per_second = f"{float(usd) / SECONDS_PER_MONTH:.12f}"
    return InstanceSize(slug, name, cpu_type, cpus, int(mem_gib * GIB), usd, per_second, tier,
                        single, scalable, bw, deprecated)


INSTANCE_SIZES: tuple[InstanceSize, ...] = (
    _size("apps-s-1vcpu-0.5gb", "Shared 1VCPU 0.5GB", "SHARED", 1, 0.5, "5.00", "basic", True, False, 50),
    _size("apps-s-1vcpu-1gb-fixed", "Shared 1VCPU 1GB Fixed", "SHARED", 1, 1, "10.00", "basic", True, False, 100),
    _size("apps-s-1vcpu-1gb", "Shared 1VCPU 1GB", "SHARED", 1, 1, "12.00", "professional", False, False, 150),
    _size("apps-s-1vcpu-2gb", "Shared 1VCPU 2GB", "SHARED", 1, 2, "25.00", "professional", False, False, 200),
    _size("apps-s-2vcpu-4gb", "Shared 2VCPU 4GB", "SHARED", 2, 4, "50.00", "professional", False, False, 250),
    _size("apps-d-1vcpu-0.5gb", "Dedicated 1VCPU 0.5GB", "DEDICATED", 1, 0.5, "29.00", "professional", False, True, 100),
    _size("apps-d-1vcpu-1gb", "Dedicated 1VCPU 1GB", "DEDICATED", 1, 1, "34.00", "professional", False, True, 200),
    _size("apps-d-1vcpu-2gb", "Dedicated 1VCPU 2GB", "DEDICATED", 1, 2, "39.00", "professional", False, True, 300),
    _size("apps-d-1vcpu-4gb", "Dedicated 1VCPU 4GB", "DEDICATED", 1, 4, "49.00", "professional", False, True, 400),
    _size("apps-d-2vcpu-4gb", "Dedicated 2VCPU 4GB", "DEDICATED", 2, 4, "78.00", "professional", False, True, 500),
    _size("apps-d-2vcpu-8gb", "Dedicated 2VCPU 8GB", "DEDICATED", 2, 8, "98.00", "professional", False, True, 600),
    _size("apps-d-4vcpu-8gb", "Dedicated 4VCPU 8GB", "DEDICATED", 4, 8, "156.00", "professional", False, True, 700),
    _size("apps-d-4vcpu-16gb", "Dedicated 4VCPU 16GB", "DEDICATED", 4, 16, "196.00", "professional", False, True, 800),
    _size("apps-d-8vcpu-32gb", "Dedicated 8VCPU 32GB", "DEDICATED", 8, 32, "392.00", "professional", False, True, 900),
    # Legacy slugs: still served and accepted for older apps (do-app-platform.md §3.4, §7.1).
    _size("basic-xxs", "Basic XXS", "SHARED", 1, 0.5, "5.00", "basic", True, False, 40, True),
    _size("basic-xs", "Basic XS", "SHARED", 1, 1, "10.00", "basic", True, False, 40, True),
    _size("basic-s", "Basic S", "SHARED", 1, 2, "20.00", "basic", True, False, 40, True),
    _size("basic-m", "Basic M", "SHARED", 2, 4, "40.00", "basic", True, False, 40, True),
    _size("professional-xs", "Professional XS", "SHARED", 1, 1, "12.00", "professional", False, False, 100, True),
    _size("professional-s", "Professional S", "SHARED", 1, 2, "25.00", "professional", False, False, 100, True),
    _size("professional-m", "Professional M", "SHARED", 2, 4, "50.00", "professional", False, False, 100, True),
    _size("professional-1l", "Professional 1L", "DEDICATED", 1, 4, "75.00", "professional", False, True, 100, True),
    _size("professional-l", "Professional L", "DEDICATED", 2, 8, "150.00", "professional", False, True, 100, True),
    _size("professional-xl", "Professional XL", "DEDICATED", 4, 16, "300.00", "professional", False, True, 100, True),
)



def _with_tier_moves(sizes: tuple[InstanceSize, ...]) -> tuple[InstanceSize, ...]:
    """Link each basic size to the professional one of the same shape (CPU type, vCPUs, memory, and
    generation: legacy slugs to legacy slugs), and back: basic-xs ↔ professional-xs,
    apps-s-1vcpu-1gb-fixed ↔ apps-s-1vcpu-1gb. Sizes without a counterpart have neither field."""
    def shape(size: InstanceSize) -> tuple[str, int, int, bool]:
        return size.cpu_type, size.cpus, size.memory_bytes, size.deprecation_intent

    by_tier = {(s.tier_slug, shape(s)): s.slug for s in sizes}
    return tuple(replace(s, tier_upgrade_to=by_tier.get(("professional", shape(s))) if s.tier_slug == "basic" else None,
                         tier_downgrade_to=by_tier.get(("basic", shape(s))) if s.tier_slug == "professional" else None)
                 for s in sizes)


INSTANCE_SIZES = _with_tier_moves(INSTANCE_SIZES)

TIERS: tuple[Tier, ...] = (
    Tier("starter", "Starter", 1073741824, 6000),
    Tier("basic", "Basic", 42949672960, 24000),
    Tier("professional", "Professional", 107374182400, 60000),
)

REGIONS_BY_SLUG = {r.slug: r for r in REGIONS}
# Users may name a data centre (``ams3``) where a region slug is expected; map it back.
REGIONS_BY_DATA_CENTER = {dc: r for r in REGIONS for dc in r.data_centers}
INSTANCE_SIZES_BY_SLUG = {s.slug: s for s in INSTANCE_SIZES}
TIERS_BY_SLUG = {t.slug: t for t in TIERS}
STATIC_SITE_USD_PER_MONTH = 3.0
DEV_DATABASE_USD_PER_MONTH = 7.0


def find_region(slug: str) -> Region | None:
    return REGIONS_BY_SLUG.get(slug) or REGIONS_BY_DATA_CENTER.get(slug)


def default_region() -> Region:
    return REGIONS_BY_SLUG[DEFAULT_REGION]
# A dedicated egress IP is billed per app while assigned (reference §4.10, §7.1).
DEDICATED_EGRESS_IP_USD_PER_MONTH = 25.0
