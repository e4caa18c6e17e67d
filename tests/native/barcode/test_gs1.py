"""GS1 normalisation: check digits, UPC/EAN equivalence, UPC-E expansion, AIs, variable measure."""
from decimal import Decimal

import numpy as np
import pytest
import zxingcpp

from storeedge.native import gs1
from storeedge.native.barcode import read_barcodes
from storeedge.native.barcode_synth import render_code
from storeedge.native.exc import NativeInputError
from storeedge.native.gs1 import GS1Error, ItemKey, Measure, VariableMeasureScheme, normalize


@pytest.mark.parametrize("body,check", [("400638133393", "1"), ("01234567890", "5"),
                                        ("9638507", "4"), ("0950110153000", "3"),
                                        ("629104150021", "3")])
def test_check_digit_known_values(body, check):
    assert gs1.check_digit(body) == check


def test_check_digit_rejects_non_digits():
    with pytest.raises(GS1Error):
        gs1.check_digit("12a4")


def test_upca_equals_ean13_with_leading_zero():
    a = normalize("012345678905", "UPC-A")
    b = normalize("0012345678905", "EAN-13")
    c = normalize("0012345678905", zxingcpp.BarcodeFormat.UPCA)
    assert a == b == c and a.gtin14 == "00012345678905"
    assert hash(a) == hash(b)


@pytest.mark.parametrize("upce,upca", [
    ("01234505", "012000003455"),      # last digit 0..2: manufacturer xx d6 00, item 00 ddd
    ("01234514", "012100003454"),
    ("01234531", "012300000451"),      # 3: manufacturer xxx00, item 000dd
    ("01234543", "012340000053"),      # 4: manufacturer xxxx0, item 0000d
    ("01234565", "012345000065"),      # 5..9: manufacturer xxxxx, item 0000d
    ("11234562", "112345000062"),      # number system 1
])
def test_upce_expansion(upce, upca):
    assert gs1.expand_upce(upce) == upca
    assert normalize(upce, "UPC-E") == normalize(upca, "UPC-A")


def test_upce_as_reported_by_zxing_matches_upca():
    # zxing-cpp reports UPC-E as the 13-digit EAN form of its UPC-A expansion
    assert normalize("0012345000065", "UPC-E") == normalize("012345000065", "UPC-A")


def test_ean8_is_padded():
    assert normalize("96385074", "EAN-8").gtin14 == "00000096385074"


@pytest.mark.parametrize("text,fmt", [("4006381333932", "EAN-13"), ("012345678904", "UPC-A"),
                                      ("96385075", "EAN-8"), ("01234566", "UPC-E"),
                                      ("(01)09501101530004", "DataBar"),
                                      ("0109501101530004", "DataBar")])
def test_bad_check_digits_rejected(text, fmt):
    with pytest.raises(GS1Error):
        normalize(text, fmt)


@pytest.mark.parametrize("text,fmt", [("", "EAN-13"), ("40063813339", "EAN-13"),
                                      ("4006381333931", "EAN-8"), ("40063A1333931", "EAN-13"),
                                      ("(99)xyz", "Code 128"), ("hello", "QR Code"),
                                      ("(01)123", "DataBar"), ("(01", "DataBar"),
                                      ("7701234", "Code 128"), ("(17)2612", "Data Matrix")])
def test_malformed_content_is_a_clear_error(text, fmt):
    with pytest.raises(GS1Error) as info:
        normalize(text, fmt)
    assert isinstance(info.value, (NativeInputError, ValueError))
    assert str(info.value)


def test_element_string_hri_and_raw_forms_agree():
    hri = "(01)09501101530003(17)261231(10)AB12(21)SER9"
    raw = "0109501101530003172612311" + "0AB12\x1d21SER9"
    escaped = "]d2" + "010950110153000317261231" + "10AB12<GS>21SER9"
    for text in (hri, raw, escaped):
        key = normalize(text, "Data Matrix")
        assert key.gtin14 == "09501101530003"
        assert (key.lot, key.expiry, key.serial) == ("AB12", "261231", "SER9")


def test_weight_and_price_ais():
    key = normalize("(01)09501101530003(3103)001250", "DataBar Expanded")
    assert key.measure == Measure("weight", Decimal("1.250"))
    key = normalize("(01)09501101530003(3922)1499", "DataBar Expanded")
    assert key.measure == Measure("price", Decimal("14.99"))
    raw = normalize("0109501101530003" + "3922" + "1499", "Code 128")
    assert raw.measure == key.measure


def test_databar_gs1128_datamatrix_equal_ean13_key():
    ean = normalize("9501101530003", "EAN-13")
    for fmt in ("DataBar", "Code 128", "Data Matrix"):
        assert normalize("(01)09501101530003(10)L1", fmt) == ean


def test_variable_measure_price_split_default_scheme():
    body = "21" + "12345" + "01234"
    key = normalize(body + gs1.check_digit(body), "EAN-13")
    assert key.variable_item == "12345"
    assert key.measure == Measure("price", Decimal("12.34"))
    other_price = "21" + "12345" + "00999"
    assert normalize(other_price + gs1.check_digit(other_price), "EAN-13") == key
    assert key.gtin14 == "0" + "2112345000000"[:12] + gs1.check_digit("211234500000")


def test_variable_measure_weight_and_upca_prefix_2():
    body = "28" + "00042" + "01500"
    key = normalize(body + gs1.check_digit(body), "EAN-13")
    assert key.measure == Measure("weight", Decimal("1.500")) and key.variable_item == "00042"
    upca = "2" + "00042" + "01500"          # UPC-A number system 2 -> EAN-13 prefix 02
    key2 = normalize(upca + gs1.check_digit(upca), "UPC-A")
    assert key2.measure == Measure("price", Decimal("15.00"))


def test_variable_measure_custom_scheme_and_disabled():
    scheme = VariableMeasureScheme(kinds={"23": "weight"}, item_len=6, value_len=4,
                                   weight_decimals=3)
    body = "23" + "123456" + "0750"
    text = body + gs1.check_digit(body)
    key = normalize(text, "EAN-13", scheme)
    assert key.variable_item == "123456" and key.measure == Measure("weight", Decimal("0.750"))
    plain = normalize(text, "EAN-13", None)
    assert plain.measure is None and plain.gtin14 == "0" + text


def test_bad_scheme_rejected():
    with pytest.raises(GS1Error):
        VariableMeasureScheme(item_len=6, value_len=5)
    with pytest.raises(GS1Error):
        VariableMeasureScheme(kinds={"2": "price"})
    with pytest.raises(GS1Error):
        VariableMeasureScheme(kinds={"21": "volume"})


def test_item_key_equality_ignores_extras():
    assert ItemKey("09501101530003", lot="A") == ItemKey("09501101530003", lot="B")
    assert ItemKey("09501101530003") != ItemKey("09501101530010")


@pytest.mark.parametrize("text,fmt", [
    ("9501101530003", "EAN-13"),
    ("(01)09501101530003", "DataBar"),
    ("(01)09501101530003(3103)000750", "DataBarExpanded"),
    ("(01)09501101530003(10)LOT7", "Code128"),
    ("(01)09501101530003(17)261231", "DataMatrix"),
])
def test_real_reads_of_one_item_compare_equal(text, fmt):
    """Symbols written by zxing-cpp, read back by our reader, normalised: one key."""
    img = np.pad(render_code(text, fmt, module_px=3), 30, constant_values=255)
    reads = read_barcodes(img)
    assert len(reads) == 1, reads
    assert reads[0].item_key() == normalize("9501101530003", "EAN-13")


def test_real_upca_and_ean13_reads_compare_equal():
    keys = []
    for text, fmt in (("03600029145", "UPC-A"), ("0036000291452", "EAN-13")):
        img = np.pad(render_code(text, fmt, module_px=3), 30, constant_values=255)
        keys.append(read_barcodes(img)[0].item_key())
    assert keys[0] == keys[1] and keys[0].gtin14 == "00036000291452"
