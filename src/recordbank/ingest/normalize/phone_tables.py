"""Per-region dialing facts, generated from the ``phonenumbers`` metadata when first needed.

Hand-written tables go stale; libphonenumber's metadata is maintained. We take from it only
what a vectorized check can use: calling code, national (trunk) prefix, a literal international
(exit) prefix, and the possible lengths of the national significant number (NSN).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata


@dataclass(frozen=True)
class PhoneTables:
    region_cc: dict[str, str]  # "GB" -> "44"
    region_trunk: dict[str, str]  # "GB" -> "0", "US" -> "1", "RU" -> "8", "IT" -> ""
    region_exit: dict[str, str]  # "US" -> "011", "JP" -> "010", "GB" -> "" ("00" is always taken)
    region_lengths: dict[str, int]  # "GB" -> bit mask of possible NSN lengths
    cc_trunk: dict[str, str]  # "44" -> trunk prefix of the code's main region
    cc_lengths: dict[str, int]  # "44" -> union of masks of every region sharing the code
    codes_by_size: dict[int, tuple[str, ...]]  # 1 -> ("1", "7"), 2 -> ("20", ...), 3 -> ...

    # Packed forms for SQL: one integer lookup per row instead of one string lookup per fact.
    # bits 0-19: possible NSN lengths; 20-29: calling code; 30-33: trunk index; 34-37: exit index
    @property
    def trunks(self) -> tuple[str, ...]:
        return ("", *sorted({v for v in self.region_trunk.values() if v}))

    @property
    def exits(self) -> tuple[str, ...]:
        return ("", *sorted({v for v in self.region_exit.values() if v}))

    def pack(self, mask: int, cc: str, trunk: str, exit_code: str = "") -> int:
        return (mask | int(cc or 0) << CC_SHIFT | self.trunks.index(trunk) << TRUNK_SHIFT
                | self.exits.index(exit_code) << EXIT_SHIFT)

    def region_packed(self, region: str) -> int:
        if region not in self.region_cc:
            return 0
        return self.pack(self.region_lengths[region], self.region_cc[region],
                         self.region_trunk[region], self.region_exit[region])

    def cc_packed(self, cc: str) -> int:
        return self.pack(self.cc_lengths[cc], cc, self.cc_trunk.get(cc, ""))

    def cc_length_by_prefix(self) -> list[int]:
        """For every 3-digit prefix 000..999: the length of the calling code it starts with."""
        out = []
        for p in range(1000):
            digits = f"{p:03d}"
            out.append(next((n for n in (1, 2, 3) if digits[:n] in self.codes_by_size[n]), 0))
        return out


CC_SHIFT = 20
TRUNK_SHIFT = 30
EXIT_SHIFT = 34


def _mask(lengths: tuple[int, ...]) -> int:
    mask = 0
    for n in lengths:
        if n > 0:
            mask |= 1 << n
    return mask


@cache
def phone_tables() -> PhoneTables:
    """Build the tables once per process (~60 ms: the metadata loads lazily)."""
    region_cc: dict[str, str] = {}
    region_trunk: dict[str, str] = {}
    region_exit: dict[str, str] = {}
    region_lengths: dict[str, int] = {}
    cc_trunk: dict[str, str] = {}
    cc_lengths: dict[str, int] = {}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        meta = PhoneMetadata.metadata_for_region(region)
        if meta is None or meta.general_desc is None:
            continue
        cc = str(meta.country_code)
        mask = _mask(tuple(meta.general_desc.possible_length or ()))
        region_cc[region] = cc
        region_lengths[region] = mask
        cc_lengths[cc] = cc_lengths.get(cc, 0) | mask
        trunk = meta.national_prefix or ""
        region_trunk[region] = trunk if trunk.isdigit() else ""
        idd = meta.international_prefix or ""
        # Only literal prefixes; "0" (CV, WS) would swallow ordinary numbers.
        region_exit[region] = idd if idd.isdigit() and len(idd) >= 3 else ""
    for cc_int, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        cc = str(cc_int)
        main = regions[0] if regions else ""
        cc_trunk[cc] = region_trunk.get(main, "")
    for cc_int in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        meta = PhoneMetadata.metadata_for_nongeo_region(cc_int)
        if meta is not None and meta.general_desc is not None:
            cc = str(cc_int)
            cc_lengths[cc] = cc_lengths.get(cc, 0) | _mask(tuple(meta.general_desc.possible_length))
    by_size: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for cc in cc_lengths:
        by_size[len(cc)].append(cc)
    return PhoneTables(
        region_cc, region_trunk, region_exit, region_lengths, cc_trunk, cc_lengths,
        {k: tuple(sorted(v)) for k, v in by_size.items()},
    )
