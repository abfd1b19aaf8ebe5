"""The choices of the product and review commands, as enums (a bad value is a usage error that
lists the valid ones). Kept free of heavy imports: `skinctl --help` loads this module."""

from __future__ import annotations

from enum import StrEnum


class ProductFormat(StrEnum):
    SEPHORA = "sephora"
    SKINCARE_CLEAN = "skincare-clean"


class ReviewFormat(StrEnum):
    SEPHORA = "sephora"


# The file names of the catalog's product sets, so `--format` can be left out for them.
PRODUCT_FILE_FORMATS = {
    "product_info.csv": ProductFormat.SEPHORA,
    "skincare_products_clean.csv": ProductFormat.SKINCARE_CLEAN,
}


class SkinType(StrEnum):
    OILY = "oily"
    DRY = "dry"
    NORMAL = "normal"
    COMBINATION = "combination"
    SENSITIVE = "sensitive"


SKIN_TYPES = tuple(SkinType)
# How the Sephora claims write each skin type ("Best for Oily, Combo, Normal Skin").
CLAIM_WORDS = {
    SkinType.OILY: ("oily",),
    SkinType.DRY: ("dry",),
    SkinType.NORMAL: ("normal",),
    SkinType.COMBINATION: ("combo", "combination"),
}


class ProductKind(StrEnum):
    """`--type`: a node of the category tree, for both product sources."""

    MOISTURIZER = "moisturizer"
    SERUM = "serum"
    CLEANSER = "cleanser"
    TONER = "toner"
    EXFOLIATOR = "exfoliator"
    MASK = "mask"
    EYE_CARE = "eye-care"
    SUNSCREEN = "sunscreen"
    FACE_OIL = "face-oil"
    MIST = "mist"
    ACNE_TREATMENT = "acne-treatment"
    LIP_CARE = "lip-care"
    BALM = "balm"
    BODY = "body"


_SK = "Skincare > "
# Each kind: Sephora category paths and skincare-clean product types (its category_path).
KIND_CATEGORIES: dict[ProductKind, tuple[str, ...]] = {
    ProductKind.MOISTURIZER: (
        _SK + "Moisturizers > Moisturizers",
        _SK + "Moisturizers > Night Creams",
        _SK + "Moisturizers > BB & CC Creams",
        _SK + "Moisturizers",
        "Moisturiser",
    ),
    ProductKind.SERUM: (_SK + "Treatments > Face Serums", "Serum"),
    ProductKind.CLEANSER: (
        _SK + "Cleansers > Face Wash & Cleansers",
        _SK + "Cleansers > Makeup Removers",
        _SK + "Cleansers",
        "Cleanser",
    ),
    ProductKind.TONER: (_SK + "Cleansers > Toners", "Toner"),
    ProductKind.EXFOLIATOR: (
        _SK + "Cleansers > Exfoliators",
        _SK + "Treatments > Facial Peels",
        "Exfoliator",
        "Peel",
    ),
    ProductKind.MASK: (_SK + "Masks > Face Masks", _SK + "Masks > Sheet Masks", "Mask"),
    ProductKind.EYE_CARE: (
        _SK + "Eye Care > Eye Creams & Treatments",
        _SK + "Eye Care > Eye Masks",
        "Eye Care",
    ),
    ProductKind.SUNSCREEN: (
        _SK + "Sunscreen > Face Sunscreen",
        _SK + "Sunscreen > Body Sunscreen",
        _SK + "Sunscreen",
    ),
    ProductKind.FACE_OIL: (_SK + "Moisturizers > Face Oils", "Oil"),
    ProductKind.MIST: (_SK + "Moisturizers > Mists & Essences", "Mist"),
    ProductKind.ACNE_TREATMENT: (_SK + "Treatments > Blemish & Acne Treatments",),
    ProductKind.LIP_CARE: (_SK + "Lip Balms & Treatments",),
    ProductKind.BALM: ("Balm",),
    ProductKind.BODY: ("Body Wash", "Bath Salts", "Bath Oil", _SK + "Self Tanners > For Body"),
}


class Concern(StrEnum):
    """`--concern`: the Sephora "Good for: ..." claims."""

    ACNE = "acne"
    DRYNESS = "dryness"
    PORES = "pores"
    DARK_CIRCLES = "dark-circles"
    DARK_SPOTS = "dark-spots"
    DULLNESS = "dullness"
    ANTI_AGING = "anti-aging"
    FIRMNESS = "firmness"
    REDNESS = "redness"


CONCERN_CLAIMS = {
    Concern.ACNE: "Good for: Acne/Blemishes",
    Concern.DRYNESS: "Good for: Dryness",
    Concern.PORES: "Good for: Pores",
    Concern.DARK_CIRCLES: "Good for: Dark Circles",
    Concern.DARK_SPOTS: "Good for: Dark spots",
    Concern.DULLNESS: "Good for: Dullness/Uneven Texture",
    Concern.ANTI_AGING: "Good for: Anti-Aging",
    Concern.FIRMNESS: "Good for: Loss of firmness",
    Concern.REDNESS: "Good for: Redness",
}
