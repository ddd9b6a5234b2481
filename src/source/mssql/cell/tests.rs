//! Every SQL Server type as JSON, at the ends of its range.

use super::*;
use serde_json::json;
use std::borrow::Cow;
use tiberius::numeric::Numeric;
use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};
use tiberius::xml::XmlData;

/// A value as JSON text.
fn j(ty: ColumnType, d: ColumnData<'_>) -> String {
    cell_to_json(ty, false, &d)
        .unwrap_or_else(|e| panic!("{ty:?} {d:?}: {e}"))
        .to_string()
}

// -- values ---------------------------------------------------------------

#[test]
fn integers_of_every_width() {
    assert_eq!(j(ColumnType::Int1, ColumnData::U8(Some(0))), "0");
    assert_eq!(j(ColumnType::Intn, ColumnData::U8(Some(255))), "255");
    assert_eq!(
        j(ColumnType::Int2, ColumnData::I16(Some(i16::MIN))),
        "-32768"
    );
    assert_eq!(
        j(ColumnType::Intn, ColumnData::I16(Some(i16::MAX))),
        "32767"
    );
    assert_eq!(
        j(ColumnType::Int4, ColumnData::I32(Some(i32::MIN))),
        "-2147483648"
    );
    assert_eq!(
        j(ColumnType::Intn, ColumnData::I32(Some(i32::MAX))),
        "2147483647"
    );
    // BIGINT exact, beyond f64's 2^53.
    assert_eq!(
        j(
            ColumnType::Int8,
            ColumnData::I64(Some(9_007_199_254_740_993))
        ),
        "9007199254740993"
    );
    assert_eq!(
        j(ColumnType::Intn, ColumnData::I64(Some(i64::MIN))),
        "-9223372036854775808"
    );
    assert_eq!(
        j(ColumnType::Int8, ColumnData::I64(Some(i64::MAX))),
        "9223372036854775807"
    );
    for d in [
        ColumnData::U8(None),
        ColumnData::I16(None),
        ColumnData::I32(None),
        ColumnData::I64(None),
    ] {
        assert_eq!(j(ColumnType::Intn, d), "null");
    }
}

#[test]
fn floats_bits_strings_guids() {
    // REAL: the shortest text of the f32, not its f64 widening (0.100000001…).
    assert_eq!(j(ColumnType::Float4, ColumnData::F32(Some(0.1))), "0.1");
    assert_eq!(
        j(ColumnType::Floatn, ColumnData::F32(Some(-1.5e-7))),
        "-0.00000015"
    );
    assert_eq!(j(ColumnType::Floatn, ColumnData::F32(None)), "null");
    assert_eq!(j(ColumnType::Float8, ColumnData::F64(Some(0.1))), "0.1");
    let big = cell_to_json(ColumnType::Floatn, false, &ColumnData::F64(Some(f64::MAX))).unwrap();
    assert_eq!(big.as_f64(), Some(f64::MAX));
    assert_eq!(j(ColumnType::Floatn, ColumnData::F64(None)), "null");
    assert_eq!(
        cell_to_json(ColumnType::Float8, false, &ColumnData::F64(Some(f64::NAN))),
        Err(CellError::NotFinite("float"))
    );
    assert_eq!(
        cell_to_json(
            ColumnType::Float4,
            false,
            &ColumnData::F32(Some(f32::INFINITY))
        ),
        Err(CellError::NotFinite("real"))
    );
    assert_eq!(j(ColumnType::Bit, ColumnData::Bit(Some(true))), "true");
    assert_eq!(j(ColumnType::Bitn, ColumnData::Bit(Some(false))), "false");
    assert_eq!(j(ColumnType::Bitn, ColumnData::Bit(None)), "null");
    // char, varchar, nchar, nvarchar, text, ntext: all arrive as String.
    for (ty, text) in [
        (ColumnType::BigChar, "ab   "),
        (ColumnType::BigVarChar, "plain"),
        (ColumnType::NChar, "Zürich "),
        (ColumnType::NVarchar, "Zürich 東京 😀"),
        (ColumnType::Text, "old text"),
        (ColumnType::NText, "old ntext ü"),
        (ColumnType::NVarchar, ""),
    ] {
        assert_eq!(
            cell_to_json(ty, false, &ColumnData::String(Some(Cow::Borrowed(text)))).unwrap(),
            json!(text),
            "{ty:?}"
        );
    }
    assert_eq!(j(ColumnType::NVarchar, ColumnData::String(None)), "null");
    let g = uuid::Uuid::parse_str("0E984725-C51C-4BF4-9960-E1C80E27ABA0").unwrap();
    assert_eq!(
        j(ColumnType::Guid, ColumnData::Guid(Some(g))),
        "\"0e984725-c51c-4bf4-9960-e1c80e27aba0\""
    );
    assert_eq!(j(ColumnType::Guid, ColumnData::Guid(None)), "null");
}

#[test]
fn binary_is_base64_and_rowversion_is_hex() {
    for ty in [
        ColumnType::BigBinary,
        ColumnType::BigVarBin,
        ColumnType::Image,
    ] {
        assert_eq!(
            j(ty, ColumnData::Binary(Some(vec![0u8, 1, 255].into()))),
            "\"AAH/\"",
            "{ty:?}"
        );
        assert_eq!(j(ty, ColumnData::Binary(Some(vec![].into()))), "\"\"");
        assert_eq!(j(ty, ColumnData::Binary(None)), "null");
    }
    let rv = ColumnData::Binary(Some(vec![0, 0, 0, 0, 0, 0, 0x07, 0xD1].into()));
    assert_eq!(
        cell_to_json(ColumnType::BigBinary, true, &rv).unwrap(),
        json!("0x00000000000007D1")
    );
    // The same bytes in a plain binary(8) column stay base64.
    assert_eq!(
        cell_to_json(ColumnType::BigBinary, false, &rv).unwrap(),
        json!("AAAAAAAAB9E=")
    );
    assert_eq!(
        cell_to_json(ColumnType::BigBinary, true, &ColumnData::Binary(None)).unwrap(),
        Value::Null
    );
}

#[test]
fn decimals_are_exact() {
    let n = |v: i128, s: u8| {
        j(
            ColumnType::Numericn,
            ColumnData::Numeric(Some(Numeric::new_with_scale(v, s))),
        )
    };
    assert_eq!(
        n(123456789012345678901234567, 4),
        "12345678901234567890123.4567"
    );
    // Precision 38, the maximum, at both ends of the scale (tiberius's Numeric
    // stops at scale 37: it panics on a decimal(38,38) column, see on_rt).
    let max38 = 10i128.pow(38) - 1;
    assert_eq!(n(max38, 0), "99999999999999999999999999999999999999");
    assert_eq!(n(max38, 37), "9.9999999999999999999999999999999999999");
    assert_eq!(
        n(10i128.pow(37) - 1, 37),
        "0.9999999999999999999999999999999999999"
    );
    assert_eq!(n(-max38, 10), "-9999999999999999999999999999.9999999999");
    // Negative values at every position of the decimal point.
    assert_eq!(n(-5, 2), "-0.05");
    assert_eq!(n(-123456, 3), "-123.456");
    assert_eq!(n(-7, 0), "-7");
    assert_eq!(n(-1, 37), "-0.0000000000000000000000000000000000001");
    assert_eq!(n(0, 2), "0.00");
    assert_eq!(n(232860, 2), "2328.60");
    assert_eq!(j(ColumnType::Decimaln, ColumnData::Numeric(None)), "null");
}

#[test]
fn money_and_smallmoney_are_exact_within_2_pow_39() {
    let m = |ty: ColumnType, n: i64| j(ty, ColumnData::F64(Some(tiberius_money(n))));
    assert_eq!(m(ColumnType::Money, 23_286_000), "2328.6000");
    assert_eq!(m(ColumnType::Money, -1), "-0.0001");
    assert_eq!(m(ColumnType::Money, 0), "0.0000");
    assert_eq!(m(ColumnType::Money, 9_223_372_035_807), "922337203.5807");
    // SMALLMONEY's whole range.
    assert_eq!(m(ColumnType::Money4, i64::from(i32::MIN)), "-214748.3648");
    assert_eq!(m(ColumnType::Money4, i64::from(i32::MAX)), "214748.3647");
    // The largest amounts below 2^39 still come back to the last 1/10000.
    let limit: i64 = (1 << 39) * 10_000;
    assert_eq!(m(ColumnType::Money, limit - 1), "549755813887.9999");
    assert_eq!(m(ColumnType::Money, -(limit - 1)), "-549755813887.9999");
    assert_eq!(j(ColumnType::Money, ColumnData::F64(None)), "null");
    // Pseudo-random amounts of every magnitude below the limit, both signs.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for bits in 1..=52u32 {
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let n = ((x >> 11) % (1u64 << bits)) as i64 % limit;
            for n in [n, -n] {
                assert_eq!(
                    money_text(tiberius_money(n)),
                    Ok(decimal_text(n.into(), 4)),
                    "{n}"
                );
            }
        }
    }
    // Every amount just under the limit.
    for n in limit - 200_000..limit {
        assert_eq!(
            money_text(tiberius_money(n)),
            Ok(decimal_text(n.into(), 4)),
            "{n}"
        );
    }
}

#[test]
fn money_beyond_2_pow_39_is_exact_or_an_error_never_wrong() {
    let limit: i64 = (1 << 39) * 10_000;
    let mut errors = 0;
    for n in (limit..limit + 100_000).chain(i64::MAX - 100_000..=i64::MAX) {
        match money_text(tiberius_money(n)) {
            Ok(text) => assert_eq!(text, decimal_text(n.into(), 4), "{n}"),
            Err(e) => {
                assert_eq!(e, CellError::MoneyInexact(tiberius_money(n)));
                errors += 1;
            }
        }
    }
    assert!(errors > 0, "f64 cannot hold every amount past 2^39");
    // MONEY's own extremes are among them: an error telling what to do.
    let e = column_value(
        "Balance",
        ColumnType::Money,
        false,
        &ColumnData::F64(Some(tiberius_money(i64::MAX))),
    )
    .unwrap_err();
    assert!(
        e.starts_with("column Balance (Money): the MONEY value")
            && e.contains("CAST(col AS DECIMAL(19,4))"),
        "{e}"
    );
    assert!(money_text(tiberius_money(i64::MIN)).is_err());
    assert_eq!(money_text(f64::NAN), Err(CellError::NotFinite("money")));
}

#[test]
fn xml_arrives_as_its_own_variant() {
    let x = XmlData::new("<form id=\"1\"><field/></form>");
    assert_eq!(
        cell_to_json(
            ColumnType::Xml,
            false,
            &ColumnData::Xml(Some(Cow::Owned(x)))
        )
        .unwrap(),
        json!("<form id=\"1\"><field/></form>")
    );
    assert_eq!(j(ColumnType::Xml, ColumnData::Xml(None)), "null");
}

#[test]
fn dates_and_times_as_iso_8601() {
    // datetime: days since 1900-01-01, 1/300 s since midnight.
    assert_eq!(
        j(
            ColumnType::Datetime,
            ColumnData::DateTime(Some(DateTime::new(44195, 300 * 3600 + 150)))
        ),
        "\"2021-01-01T01:00:00.500\""
    );
    assert_eq!(
        j(
            ColumnType::Datetimen,
            ColumnData::DateTime(Some(DateTime::new(-53690, 0)))
        ),
        "\"1753-01-01T00:00:00\""
    );
    // 9999-12-31 23:59:59.997 is 25919999/300 s: kept to the nanosecond.
    assert_eq!(
        j(
            ColumnType::Datetimen,
            ColumnData::DateTime(Some(DateTime::new(2_958_463, 25_919_999)))
        ),
        "\"9999-12-31T23:59:59.996666666\""
    );
    assert_eq!(j(ColumnType::Datetimen, ColumnData::DateTime(None)), "null");
    // smalldatetime: days since 1900-01-01, minutes.
    assert_eq!(
        j(
            ColumnType::Datetime4,
            ColumnData::SmallDateTime(Some(SmallDateTime::new(44195, 61)))
        ),
        "\"2021-01-01T01:01:00\""
    );
    assert_eq!(
        j(
            ColumnType::Datetimen,
            ColumnData::SmallDateTime(Some(SmallDateTime::new(65535, 1439)))
        ),
        "\"2079-06-06T23:59:00\""
    );
    assert_eq!(
        j(ColumnType::Datetimen, ColumnData::SmallDateTime(None)),
        "null"
    );
    // date: days since 0001-01-01.
    let date = Date::new(737_790);
    assert_eq!(
        j(ColumnType::Daten, ColumnData::Date(Some(date))),
        "\"2021-01-01\""
    );
    assert_eq!(
        j(ColumnType::Daten, ColumnData::Date(Some(Date::new(0)))),
        "\"0001-01-01\""
    );
    assert_eq!(
        j(
            ColumnType::Daten,
            ColumnData::Date(Some(Date::new(3_652_058)))
        ),
        "\"9999-12-31\""
    );
    assert_eq!(j(ColumnType::Daten, ColumnData::Date(None)), "null");
    // time(n): increments of 10^-n s.
    let time = Time::new(12_345_678_901, 7);
    assert_eq!(
        j(ColumnType::Timen, ColumnData::Time(Some(time))),
        "\"00:20:34.567890100\""
    );
    assert_eq!(
        j(
            ColumnType::Timen,
            ColumnData::Time(Some(Time::new(863_999_999_999, 7)))
        ),
        "\"23:59:59.999999900\""
    );
    assert_eq!(
        j(
            ColumnType::Timen,
            ColumnData::Time(Some(Time::new(45_296_789, 3)))
        ),
        "\"12:34:56.789\""
    );
    assert_eq!(
        j(
            ColumnType::Timen,
            ColumnData::Time(Some(Time::new(3_600, 0)))
        ),
        "\"01:00:00\""
    );
    assert_eq!(j(ColumnType::Timen, ColumnData::Time(None)), "null");
    assert_eq!(
        cell_to_json(
            ColumnType::Timen,
            false,
            &ColumnData::Time(Some(Time::new(864_000_000_000, 7)))
        ),
        Err(CellError::OutOfRange("time"))
    );
    // datetime2.
    assert_eq!(
        j(
            ColumnType::Datetime2,
            ColumnData::DateTime2(Some(DateTime2::new(date, time)))
        ),
        "\"2021-01-01T00:20:34.567890100\""
    );
    assert_eq!(
        j(ColumnType::Datetime2, ColumnData::DateTime2(None)),
        "null"
    );
    // datetimeoffset: UTC on the wire, shown in its own offset.
    let utc3 = DateTime2::new(date, Time::new(3 * 3600, 0));
    assert_eq!(
        j(
            ColumnType::DatetimeOffsetn,
            ColumnData::DateTimeOffset(Some(DateTimeOffset::new(utc3, 120)))
        ),
        "\"2021-01-01T05:00:00+02:00\""
    );
    assert_eq!(
        j(
            ColumnType::DatetimeOffsetn,
            ColumnData::DateTimeOffset(Some(DateTimeOffset::new(utc3, -300)))
        ),
        "\"2020-12-31T22:00:00-05:00\""
    );
    assert_eq!(
        j(
            ColumnType::DatetimeOffsetn,
            ColumnData::DateTimeOffset(Some(DateTimeOffset::new(utc3, 0)))
        ),
        "\"2021-01-01T03:00:00Z\""
    );
    assert_eq!(
        j(
            ColumnType::DatetimeOffsetn,
            ColumnData::DateTimeOffset(None)
        ),
        "null"
    );
}

#[test]
fn a_type_the_reader_does_not_know_is_an_error_naming_column_and_type() {
    let e = column_value(
        "Shape",
        ColumnType::Udt,
        false,
        &ColumnData::Binary(Some(vec![1, 2].into())),
    )
    .unwrap_err();
    assert!(
        e.starts_with(
            "column Shape (Udt): a type the reader does not know (Binary sent for a Udt column)"
        ),
        "{e}"
    );
    let e = column_value(
        "CreatedAt",
        ColumnType::Datetime2,
        false,
        &ColumnData::I32(Some(1)),
    )
    .unwrap_err();
    assert!(e.contains("column CreatedAt (Datetime2)"), "{e}");
    assert!(e.contains("I32 sent for a Datetime2 column"), "{e}");
}
