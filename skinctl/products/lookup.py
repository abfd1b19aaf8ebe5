"""Finding a product (by database id or external id) and its summary, as every product answer
shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from skinctl.db.models import (
    Product,
)
from skinctl.errors import NotFound


def find_product(connection: Connection, ref: str) -> Product:
    """A product by database id, or by external id (Sephora's P473671, a LookFantastic URL#name)."""
    session = Session(bind=connection)
    product = None
    if ref.isdigit():
        product = session.get(Product, int(ref))
    if product is None:
        product = session.scalars(
            select(Product).where(Product.external_id == ref).limit(1)
        ).first()
    if product is None:
        product = session.scalars(
            select(Product)
            .where(func.lower(Product.name) == ref.strip().lower())
            .order_by(Product.id)
            .limit(1)
        ).first()
    if product is None:
        raise NotFound(f"No product {ref!r}.", hint="Use `skinctl products list` to find ids.")
    return product


@dataclass(frozen=True)
class ProductSummary:
    id: int
    source: str
    external_id: str
    name: str
    brand: str | None
    product_type: str | None
    category_path: str | None
    price: Decimal | None
    currency: str | None
    size: str | None
    rating: float | None
    review_count: int | None
    url: str | None


def product_summary(product: Product) -> ProductSummary:
    return ProductSummary(
        id=product.id,
        source=product.source,
        external_id=product.external_id,
        name=product.name,
        brand=product.brand,
        product_type=product.product_type,
        category_path=product.category_path,
        price=product.price,
        currency=product.currency,
        size=product.size,
        rating=product.rating,
        review_count=product.review_count,
        url=product.url,
    )
