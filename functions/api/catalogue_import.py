"""A catalogue file into the database: `{"products": [...]}`, each product with the fields
and rules of POST /products (sku, name, description, price as a decimal string,
initial_stock). Products the database lacks are added the way that route adds them
(common/products.add_product: the product, its stock, an `initial` stock movement); a
product already there is left as it is, whatever the file says, so importing twice adds
nothing. Its price or stock change through the api (POST /products/{sku}/restock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from common.pg import Tx
from common.products import add_product
from functions.api import sql
from functions.api.errors import validation_summary
from functions.api.products import ProductIn
from functions.api.schemas import RequestModel

COMPARED = ("name", "description", "price")


class CatalogueError(ValueError):
    """The file is missing or not a valid catalogue; the message says where."""


class Catalogue(RequestModel):
    products: list[ProductIn] = Field(max_length=10_000)

    @model_validator(mode="after")
    def _skus_are_unique(self) -> Catalogue:
        seen: set[str] = set()
        for product in self.products:
            if product.sku in seen:
                raise ValueError(f"the sku {product.sku} is listed twice")
            seen.add(product.sku)
        return self


@dataclass
class Imported:
    added: list[str] = field(default_factory=list)
    # SKUs already in the database, with the fields whose value there differs from the file.
    kept: dict[str, list[str]] = field(default_factory=dict)


def load_catalogue(path: Path) -> Catalogue:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogueError(f"cannot read the catalogue {path}: {exc.strerror}") from None
    try:
        return Catalogue.model_validate_json(raw)
    except ValidationError as exc:
        raise CatalogueError(f"{path} is not a catalogue: {validation_summary(exc)}") from None


def import_catalogue(tx: Tx, catalogue: Catalogue) -> Imported:
    skus = [product.sku for product in catalogue.products]
    # sku -> the COMPARED fields, in that order
    existing = {sku: dict(zip(COMPARED, rest, strict=True))
                for sku, *rest in tx.all(sql.PRODUCTS_LISTED, {"skus": skus})}
    result = Imported()
    for product in catalogue.products:
        row = existing.get(product.sku)
        if row is None:
            add_product(tx, product.sku, product.name, product.description, product.price,
                        product.initial_stock)
            result.added.append(product.sku)
        else:
            result.kept[product.sku] = [name for name in COMPARED
                                        if row[name] != getattr(product, name)]
    return result
