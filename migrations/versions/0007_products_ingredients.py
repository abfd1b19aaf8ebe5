"""Products, reviews and the CosIng ingredient database: ingredients, Annex II/III entries and
their links, product-to-ingredient links with match method and score, user name mappings.

Revision ID: 0007
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0002"
branch_labels = None
depends_on = None

NOW = sa.func.current_timestamp()
MATCH_METHODS = "match_method IN ('exact', 'synonym', 'mapped', 'fuzzy', 'none')"


def upgrade() -> None:
    op.create_table(
        "ingredients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("inci_name", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("cosing_ref_no", sa.String(20)),
        sa.Column("inn_name", sa.Text()),
        sa.Column("ph_eur_name", sa.Text()),
        sa.Column("cas_no", sa.Text()),
        sa.Column("ec_no", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("restriction", sa.Text()),
        sa.Column(
            "functions",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column("update_date", sa.Date()),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_ingredients"),
        sa.UniqueConstraint("name_key", name="uq_ingredients_name_key"),
    )
    op.create_index("ix_ingredients_cosing_ref_no", "ingredients", ["cosing_ref_no"])

    op.create_table(
        "annex_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("annex", sa.String(8), nullable=False),
        sa.Column("reference_number", sa.String(20), nullable=False),
        sa.Column("entry_no", sa.SmallInteger(), nullable=False, server_default=sa.text("1")),
        sa.Column("chemical_name", sa.Text()),
        sa.Column("glossary_name", sa.Text()),
        sa.Column("cas_no", sa.Text()),
        sa.Column("ec_no", sa.Text()),
        sa.Column("product_type", sa.Text()),
        sa.Column("max_concentration", sa.Text()),
        sa.Column("other_limitations", sa.Text()),
        sa.Column("conditions", sa.Text()),
        sa.Column("regulation", sa.Text()),
        sa.Column("conditional", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column(
            "identified_ingredients",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column("update_date", sa.Date()),
        sa.Column("raw", postgresql.JSONB()),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_annex_entries"),
        sa.UniqueConstraint(
            "annex", "reference_number", "entry_no", name="uq_annex_entries_annex_reference"
        ),
        sa.CheckConstraint("annex IN ('II', 'III')", name="ck_annex_entries_annex"),
    )

    op.create_table(
        "annex_entry_ingredients",
        sa.Column("annex_entry_id", sa.Integer(), nullable=False),
        sa.Column("ingredient_id", sa.Integer(), nullable=False),
        sa.Column("link_method", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint(
            "annex_entry_id", "ingredient_id", name="pk_annex_entry_ingredients"
        ),
        sa.ForeignKeyConstraint(
            ["annex_entry_id"],
            ["annex_entries.id"],
            ondelete="CASCADE",
            name="fk_annex_entry_ingredients_annex_entry_id_annex_entries",
        ),
        sa.ForeignKeyConstraint(
            ["ingredient_id"],
            ["ingredients.id"],
            ondelete="CASCADE",
            name="fk_annex_entry_ingredients_ingredient_id_ingredients",
        ),
        sa.CheckConstraint(
            "link_method IN ('restriction_ref', 'identified_name', 'glossary_name')",
            name="ck_annex_entry_ingredients_link_method",
        ),
    )
    op.create_index(
        "ix_annex_entry_ingredients_ingredient_id", "annex_entry_ingredients", ["ingredient_id"]
    )

    op.create_table(
        "ingredient_synonyms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ingredient_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False, server_default=sa.text("'user'")),
        sa.Column("created_by", sa.String(100)),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_ingredient_synonyms"),
        sa.ForeignKeyConstraint(
            ["ingredient_id"],
            ["ingredients.id"],
            ondelete="CASCADE",
            name="fk_ingredient_synonyms_ingredient_id_ingredients",
        ),
        sa.UniqueConstraint("name_key", name="uq_ingredient_synonyms_name_key"),
        sa.CheckConstraint("source IN ('user', 'builtin')", name="ck_ingredient_synonyms_source"),
    )

    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("brand", sa.String(200)),
        sa.Column("product_type", sa.String(100)),
        sa.Column("category_path", sa.Text()),
        sa.Column("url", sa.Text()),
        sa.Column("price", sa.Numeric(10, 2)),
        sa.Column("currency", sa.String(3)),
        sa.Column("size", sa.String(100)),
        sa.Column("rating", sa.Float()),
        sa.Column("review_count", sa.Integer()),
        sa.Column("raw", postgresql.JSONB(), nullable=False),
        sa.Column("ingest_run_id", sa.Integer()),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"], ["ingest_runs.id"], name="fk_products_ingest_run_id_ingest_runs"
        ),
        sa.UniqueConstraint("source", "external_id", name="uq_products_source_external_id"),
        sa.CheckConstraint("price IS NULL OR price >= 0", name="ck_products_price"),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 0 AND 5", name="ck_products_rating"),
    )
    op.create_index("ix_products_product_type", "products", ["product_type"])
    op.create_index("ix_products_brand", "products", ["brand"])

    op.create_table(
        "product_ingredients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("name_as_written", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("ingredient_id", sa.Integer()),
        sa.Column("match_method", sa.String(10), nullable=False, server_default=sa.text("'none'")),
        sa.Column("match_score", sa.Float()),
        sa.PrimaryKeyConstraint("id", name="pk_product_ingredients"),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            ondelete="CASCADE",
            name="fk_product_ingredients_product_id_products",
        ),
        sa.ForeignKeyConstraint(
            ["ingredient_id"],
            ["ingredients.id"],
            ondelete="SET NULL",
            name="fk_product_ingredients_ingredient_id_ingredients",
        ),
        sa.UniqueConstraint(
            "product_id", "position", name="uq_product_ingredients_product_position"
        ),
        sa.CheckConstraint(MATCH_METHODS, name="ck_product_ingredients_match_method"),
    )
    op.create_index(
        "ix_product_ingredients_ingredient_id", "product_ingredients", ["ingredient_id"]
    )
    op.create_index("ix_product_ingredients_name_key", "product_ingredients", ["name_key"])

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("product_id", sa.Integer()),
        sa.Column("product_external_id", sa.Text(), nullable=False),
        sa.Column("author_id", sa.String(64)),
        sa.Column("rating", sa.SmallInteger()),
        sa.Column("is_recommended", sa.Boolean()),
        sa.Column("helpfulness", sa.Float()),
        sa.Column("total_feedback_count", sa.Integer()),
        sa.Column("skin_type", sa.String(20)),
        sa.Column("skin_tone", sa.String(30)),
        sa.Column("eye_color", sa.String(30)),
        sa.Column("hair_color", sa.String(30)),
        sa.Column("title", sa.Text()),
        sa.Column("review_text", sa.Text()),
        sa.Column("submitted_on", sa.Date()),
        sa.Column("raw", postgresql.JSONB(), nullable=False),
        sa.Column("ingest_run_id", sa.Integer()),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            ondelete="SET NULL",
            name="fk_reviews_product_id_products",
        ),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"], ["ingest_runs.id"], name="fk_reviews_ingest_run_id_ingest_runs"
        ),
        sa.UniqueConstraint("source", "external_id", name="uq_reviews_source_external_id"),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_reviews_rating"),
    )
    op.create_index("ix_reviews_product_id_skin_type", "reviews", ["product_id", "skin_type"])
    op.create_index("ix_reviews_product_external_id", "reviews", ["product_external_id"])


def downgrade() -> None:
    op.drop_index("ix_reviews_product_external_id", table_name="reviews")
    op.drop_index("ix_reviews_product_id_skin_type", table_name="reviews")
    op.drop_table("reviews")
    op.drop_index("ix_product_ingredients_name_key", table_name="product_ingredients")
    op.drop_index("ix_product_ingredients_ingredient_id", table_name="product_ingredients")
    op.drop_table("product_ingredients")
    op.drop_index("ix_products_brand", table_name="products")
    op.drop_index("ix_products_product_type", table_name="products")
    op.drop_table("products")
    op.drop_table("ingredient_synonyms")
    op.drop_index("ix_annex_entry_ingredients_ingredient_id", table_name="annex_entry_ingredients")
    op.drop_table("annex_entry_ingredients")
    op.drop_table("annex_entries")
    op.drop_index("ix_ingredients_cosing_ref_no", table_name="ingredients")
    op.drop_table("ingredients")
