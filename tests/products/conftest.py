"""Small files with every quirk of the real ones, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

# CosIng inventory: `sep=,` preamble, CRLF, padded names, a quoted cell with a line break,
# a duplicate name after trimming, a BOM, no trailing newline.
INVENTORY = (
    "\ufeffsep=,\r\n\r\nFile creation date: 14/10/2020\r\n\r\n"
    "Ingredients/Fragrance Inventory,Last update: 12/10/2020\r\n\r\n"
    "COSING Ref No,INCI name,INN name,Ph. Eur. Name,CAS No,EC No,Chem/IUPAC Name / Description,Restriction,Function,Update Date\r\n"
    '1,"  AQUA ","",""," 7732-18-5 "," 231-791-2 ","Water","","SOLVENT",01/01/2010\r\n'
    '2," WATER","","","","","Water","","SOLVENT",01/01/2010\r\n'
    '3," GLYCERIN ","","","56-81-5","200-289-5","Glycerol.\r\nA humectant.","","HUMECTANT, SKIN CONDITIONING",02/02/2012\r\n'
    '4," DIMETHICONE","","","","","","","EMOLLIENT",03/03/2013\r\n'
    '5," TOCOPHEROL ","","","","","","","ANTIOXIDANT",04/04/2014\r\n'
    '6," BUTYLPHENYL METHYLPROPIONAL ","","","80-54-6","","","II/1666","PERFUMING",05/05/2015\r\n'
    '7," SALICYLIC ACID ","","","69-72-7","","","III/98","PRESERVATIVE",06/06/2016\r\n'
    '8," PARFUM ","","","","","","","PERFUMING",07/07/2017\r\n'
    '9,"GLYCERIN","","","","","duplicate","","HUMECTANT",02/02/2012\r\n'
    '10," BUTYROSPERMUM PARKII BUTTER ","","","","","","","EMOLLIENT",08/08/2018\r\n'
    '11," NIACINAMIDE ","","","","","","","SKIN CONDITIONING",09/09/2019\r\n'
    '12," RETINOL ","","","","","","","SKIN CONDITIONING",09/09/2019\r\n'
    '13," PETROLATUM ","","","8009-03-8","","","II/904","EMOLLIENT",10/10/2020'
)

ANNEX_II = (
    '"File creation date: 24/12/2025"\n"ANNEX II","Last update: 08/12/2025"\n'
    '"LIST OF SUBSTANCES PROHIBITED IN COSMETIC PRODUCTS"\n"Substance identification"\n'
    '"Reference Number","Chemical name / INN","CAS Number","EC Number",Regulation,"Other Directives/Regulations",'
    '"SCCS opinions","Chemical/IUPAC Name","Identified INGREDIENTS or substances e.g.",CMR,"Update Date"\n'
    '1666,"2-(4-tert-butylbenzyl) propionaldehyde",80-54-6,201-289-8,"(EU) 2021/1902",,,"a multi\nline name",'
    '"BUTYLPHENYL METHYLPROPIONAL",,01/03/2022\n'
    '38,"Anthracene oil",120-12-7,-,"(EC) 2009/1223",,,,,,17/10/2010\n'
    '38,"Distillates (coal tar), pitch",101316-49-8,-,"(EC) 2009/1223",,,,,,17/10/2010\n'
    '39,"short row",1\n'
    '904,"Petrolatum, except if the full refining history is known and it can be shown that the substance '
    'from which it is produced is not a carcinogen",8009-03-8,232-373-2,"(EC) 2009/1223",,,,PETROLATUM,,15/10/2010\n'
)

ANNEX_III = (
    '"File creation date: 25/12/2025"\n"ANNEX III","Last update: 08/12/2025"\n'
    '"LIST OF SUBSTANCES WHICH COSMETIC PRODUCTS MUST NOT CONTAIN EXCEPT SUBJECT TO THE RESTRICTIONS LAID DOWN"\n'
    '"Substance identification",Restrictions\n'
    '"Reference Number","Chemical name / INN","Name of Common Ingredients Glossary","CAS Number","EC Number",'
    '"Product Type, body parts","Maximum concentration in ready for use preparation",Other,'
    '"Wording of conditions of use and warnings",Regulation,"Other Directives/Regulations","SCCS opinions",'
    '"Chemical/IUPAC Name","Identified INGREDIENTS or substances e.g.",CMR,"Update Date"\n'
    '98,"Salicylic acid","SALICYLIC ACID",69-72-7,200-712-3,"(a) Rinse-off hair products\n\n(b) Other products",'
    '"(a) 3,0 %\n(b) 2,0 %","Not to be used in preparations for children under 3","Not to be used for children under 3",'
    '"(EU) 2019/1966",,,,"SALICYLIC ACID",,01/01/2020\n'
)

SKINCARE_CLEAN = (
    "product_name,product_url,product_type,clean_ingreds,price\n"
    "Gentle Cream 50ml,https://example.test/gentle/1.html,Moisturiser,"
    "\"['aqua', 'glycerin', 'dimethicon', 'vitamin e']\",£5.20\n"
    "Gentle Cream 100ml,https://example.test/gentle/1.html,Moisturiser,"
    "\"['aqua', 'glycerin', 'dimethicon', 'vitamin e']\",£9.00\n"
    "Scented Cream,https://example.test/scented/2.html,Moisturiser,"
    "\"['water', 'glycerin', 'butylphenyl methylpropional']\",£12.00\n"
    "Broken Row,https://example.test/broken/3.html,Serum,\"['aqua', 'glycerin'\",£3.00\n"
    "Bad Price,https://example.test/bad/4.html,Serum,\"['aqua']\",£abc\n"
    "  Padded Serum  ,https://example.test/serum/5.html,Serum,\"['aqua', 'niacinamide', 'retinol']\",£20.00"
)

SEPHORA = (
    "product_id,product_name,brand_id,brand_name,loves_count,rating,reviews,size,variation_type,variation_value,"
    "variation_desc,ingredients,price_usd,value_price_usd,sale_price_usd,limited_edition,new,online_only,out_of_stock,"
    "sephora_exclusive,highlights,primary_category,secondary_category,tertiary_category,child_count,child_max_price,"
    "child_min_price\r\n"
    "P1,Hydra Cream,1,Brand A,10,4.5,20,1.7 oz/ 50 mL,,,,\"['-Glycerin: hydrates.', "
    "'Aqua/Water/Eau, Glycerin, Dimethicone, Butyrospermum Parkii (Shea) Butter, Tocopherol.']\",38,,,0,0,0,0,0,"
    "\"['Good for: Dryness']\",Skincare,Moisturizers,Moisturizers,0,,\r\n"
    "P2,Oil Control Gel,1,Brand A,5,4.0,8,,,,,\"['Water, Niacinamide, Salicylic Acid, Glycerin']\",25,,,0,0,0,0,0,,"
    "Skincare,Moisturizers,Moisturizers,0,,\r\n"
    "P3,Night Serum,2,Brand B,3,3.0,2,,,,,\"['Aqua, Retinol, Tocopherol, Glycerin, Dimethicone']\",60,,,0,0,0,0,0,,"
    "Skincare,Treatments,Face Serums,0,,\r\n"
    "P4,Gift Set,2,Brand B,3,,,,,,,\"['Cream:', 'Aqua, Glycerin', 'Serum:', 'Aqua, Glycerin, Retinol']\",80,,,0,0,0,0,0,,"
    "Skincare,Value & Gift Sets,,0,,\r\n"
    "P5,No Ingredients,3,Brand C,1,5.0,1,,,,,,12,,,0,0,0,0,0,,Makeup,Lip,Lip Gloss,0,,\r\n"
    "P6,Bad Rating,3,Brand C,1,9.5,1,,,,,,12,,,0,0,0,0,0,,Makeup,Lip,Lip Gloss,0,,\r\n"
)

REVIEWS = (
    ",author_id,rating,is_recommended,helpfulness,total_feedback_count,total_neg_feedback_count,"
    "total_pos_feedback_count,submission_time,review_text,review_title,skin_tone,eye_color,skin_type,hair_color,"
    "product_id,product_name,brand_name,price_usd\n"
    '0,100,5,1.0,1.0,2,0,2,2023-03-21,"Lovely,\nreally",Great,light,brown,oily,,P2,Oil Control Gel,Brand A,25.0\n'
    "1,101,5,1.0,,0,0,0,2023-03-20,Works,,,,oily,,P2,Oil Control Gel,Brand A,25.0\n"
    "2,102,2,0.0,,0,0,0,2023-03-19,Too heavy,,,,oily,,P1,Hydra Cream,Brand A,38.0\n"
    "3,103,5,1.0,,0,0,0,2023-03-19,Lovely,,,,dry,,P1,Hydra Cream,Brand A,38.0\n"
    "4,104,7,1.0,,0,0,0,2023-03-19,Bad rating,,,,dry,,P1,Hydra Cream,Brand A,38.0\n"
    "5,105,4,1.0,,0,0,0,not a date,Bad date,,,,dry,,P1,Hydra Cream,Brand A,38.0\n"
)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, content in {
        "inventory.csv": INVENTORY,
        "annex_ii.txt": ANNEX_II,
        "annex_iii.txt": ANNEX_III,
        "skincare.csv": SKINCARE_CLEAN,
        "sephora.csv": SEPHORA,
        "reviews.csv": REVIEWS,
    }.items():
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8"))
        paths[name.split(".")[0]] = path
    return paths


@pytest.fixture
def loaded(engine, files):
    """The fixture files ingested, CosIng first."""
    from skinctl.products.ingest import ingest_cosing, ingest_products, ingest_reviews

    ingest_cosing(engine, files["inventory"], files["annex_ii"], files["annex_iii"])
    ingest_products(engine, files["sephora"], "sephora")
    ingest_products(engine, files["skincare"], "skincare-clean")
    ingest_reviews(engine, files["reviews"])
    return engine


# Hydroquinone: Annex II 1339 prohibits it except as Annex III 14 allows (artificial nails).
HYDROQUINONE_INVENTORY = INVENTORY + (
    '\r\n14," HYDROQUINONE ","","","123-31-9","","","","ANTIOXIDANT, BLEACHING",07/05/2013'
    '\r\n15," PHENOXYETHANOL ","","","","","","V/29","PRESERVATIVE",01/01/2010'
    '\r\n16," METHYLISOTHIAZOLINONE ","","","","","","","PRESERVATIVE",01/01/2010'
    '\r\n17," HOMOSALATE ","","","","","","VI/3","UV FILTER",01/01/2010'
    '\r\n18," CI 77891 ","","","","","","IV/143","COLORANT",01/01/2010'
)
HYDROQUINONE_II = ANNEX_II + (
    '1339,"1,4-Dihydroxybenzene (Hydroquinone), with the exception of entry 14 in Annex III",123-31-9,'
    '204-617-8,"(EC) 2013/344",,,,"HYDROQUINONE,HYDROQUINONE",,07/05/2013\n'
)
HYDROQUINONE_III = ANNEX_III + (
    '14,"Hydroquinone","HYDROQUINONE",123-31-9,204-617-8,"Artificial nail systems\n","0.02% (after mixing for use)\n",'
    '"Professional use ","- For professional use only",(EC) 2013/344,,,,"HYDROQUINONE,",,14/05/2013\n'
)
_POSITIVE_HEADER = (
    '"Reference Number","Chemical name / INN","Name of Common Ingredients Glossary","CAS Number","EC Number",'
    '"Product Type, body parts","Maximum concentration in ready for use preparation",Other,'
    '"Wording of conditions of use and warnings",Regulation,"Other Directives/Regulations","SCCS opinions",'
    '"Chemical/IUPAC Name","Identified INGREDIENTS or substances e.g.",CMR,"Update Date"\n'
)
ANNEX_IV = (
    '"File creation date: 11/11/2025"\n"ANNEX IV","Last update: 31/10/2025"\n"LIST OF COLORANTS ALLOWED IN COSMETIC PRODUCTS"\n'
    '"Substance identification",Conditions\n'
    '"Reference Number","Chemical name","Colour index Number / Name of Common Ingredients Glossary","CAS Number",'
    '"EC Number",Color,"Product Type, body parts","Maximum concentration in ready for use preparation",Other,'
    '"Wording of conditions of use and warnings",Regulation,"Other Directives/Regulations","SCCS opinions",'
    '"Chemical/IUPAC Name","Identified INGREDIENTS or substances e.g.",CMR,"Update Date"\n'
    '143,"Titanium dioxide","CI 77891",13463-67-7,236-675-5,White,,,,,"(EC) 2009/1223",,,,"CI 77891",,14/08/2020\n'
)
ANNEX_V = (
    '"File creation date: 11/11/2025"\n"ANNEX V","Last update: 31/10/2025"\n'
    '"LIST OF PRESERVATIVES ALLOWED IN COSMETIC PRODUCTS"\n"Substance identification",Conditions\n'
    + _POSITIVE_HEADER
    + '29,"2-Phenoxyethanol","PHENOXYETHANOL",122-99-6,204-589-7,,"1,0 %",,,"(EC) 2009/1223",,,,,,15/10/2010\n'
    '1a,"Salts of benzoic acid","AMMONIUM BENZOATE / BUTYL BENZOATE; CALCIUM BENZOATE",-,-,'
    '"a) Rinse-off products, except oral care products\nb) Oral care products\nc) Leave-on products",'
    '"a) 2.5% (acid)\nb) 1.7% (acid)\nc) 0.5% (acid)\n",,,"(EC) 2009/1223",,,,,,15/10/2010\n'
    '39,"Methylisothiazolinone","METHYLISOTHIAZOLINONE",2682-20-4,220-239-6,"Rinse-off products","0,0015 %",'
    ',,"(EU) 2017/1224",,,,,,01/01/2017\n'
)
ANNEX_VI = (
    '"File creation date: 11/11/2025"\n"ANNEX VI","Last update: 31/10/2025"\n'
    '"LIST OF UV FILTERS ALLOWED IN COSMETIC PRODUCTS"\n"Substance identification",Conditions\n'
    + _POSITIVE_HEADER
    + '3,"Homosalate","HOMOSALATE",118-56-9,204-260-8,"Face products with the exception of propellent spray products",'
    '"7,34 %",,,"(EU) 2022/2195",,,,,,01/01/2022\n'
)


@pytest.fixture
def cosing_folder(tmp_path: Path) -> Path:
    """A CosIng folder as fetched: the inventory and Annexes II-VI under their export names."""
    folder = tmp_path / "cosing"
    folder.mkdir()
    for name, content in {
        "COSING_Ingredients-Fragrance Inventory_v2.csv": HYDROQUINONE_INVENTORY,
        "COSING_Annex_II_v2.txt": HYDROQUINONE_II,
        "COSING_Annex_III_v2.txt": HYDROQUINONE_III,
        "COSING_Annex_IV_v2.txt": ANNEX_IV,
        "COSING_Annex_V_v2.txt": ANNEX_V,
        "COSING_Annex_VI_v2.txt": ANNEX_VI,
    }.items():
        (folder / name).write_bytes(content.encode("utf-8"))
    return folder
