//! The values stored as text that the code treats as closed sets: each is a
//! Rust enum stored by its wire name. A stored value outside the set is a
//! database type error when read (one behaviour everywhere: a 500 logged as
//! an error), never a silent default.

/// Declares a stored enum: its variants with their wire/stored names, and
/// how a bad value is reported when deserialised (`$bad` gets the text
/// given). A test checks that serde and the OpenAPI schema use the names.
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        $name:ident, bad = |$s:ident| $bad:expr, { $($variant:ident = $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            sea_orm::DeriveValueType, serde::Serialize, utoipa::ToSchema,
        )]
        #[sea_orm(value_type = "String")]
        pub enum $name {
            $(
                #[serde(rename = $text)]
                #[schema(rename = $text)]
                $variant,
            )+
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = sea_orm::sea_query::ValueTypeErr;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s).ok_or(sea_orm::sea_query::ValueTypeErr)
            }
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every wire name, in order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::Error;
                let value = serde_json::Value::deserialize(d)?;
                let $s = value.as_str();
                match $s.and_then($name::parse) {
                    Some(v) => Ok(v),
                    None => Err(D::Error::custom($bad)),
                }
            }
        }
    };
}

/// `must be one of a, b, c`: the message of a bad log-entry field value.
fn one_of(names: &[&str]) -> String {
    format!("must be one of {}", names.join(", "))
}

stored_enum!(
    /// Access levels, ordered: a higher level can do all a lower one can.
    AccessLevel, bad = |s| match s {
        Some(s) => format!("unknown access level {s:?}, expected owner, editor or viewer"),
        None => "an access level must be a string: owner, editor or viewer".to_owned(),
    },
    { Viewer = "viewer", Editor = "editor", Owner = "owner" }
);

stored_enum!(
    Gender, bad = |s| match s {
        Some(s) => format!("unknown variant `{s}`, expected one of `male`, `female`, `other`, `unknown`"),
        None => "invalid type, expected one of `male`, `female`, `other`, `unknown`".to_owned(),
    },
    { Male = "male", Female = "female", Other = "other", Unknown = "unknown" }
);

stored_enum!(
    FeedMethod, bad = |_s| one_of(FeedMethod::NAMES),
    { Breast = "breast", Bottle = "bottle" }
);

stored_enum!(
    Side, bad = |_s| one_of(Side::NAMES),
    { Left = "left", Right = "right" }
);

stored_enum!(
    NappyType, bad = |_s| one_of(NappyType::NAMES),
    { Wee = "wee", Poo = "poo", Mixed = "mixed", Dry = "dry", Clean = "clean" }
);

stored_enum!(
    NappyColour, bad = |_s| one_of(NappyColour::NAMES),
    { Green = "green", Yellow = "yellow", Brown = "brown", Black = "black", Red = "red", Grey = "grey" }
);

stored_enum!(
    NappyConsistency, bad = |_s| one_of(NappyConsistency::NAMES),
    {
        Watery = "watery", Runny = "runny", Mushy = "mushy", Pasty = "pasty",
        Formed = "formed", HardPellets = "hardPellets",
    }
);

stored_enum!(
    ActivityType, bad = |_s| one_of(ActivityType::NAMES),
    {
        TummyTime = "tummyTime", Bath = "bath", IndoorPlay = "indoorPlay",
        OutdoorPlay = "outdoorPlay", SkinToSkin = "skinToSkin", Other = "other",
    }
);

stored_enum!(
    DoseUnit, bad = |_s| one_of(DoseUnit::NAMES),
    {
        Ml = "ml", Mg = "mg", Drops = "drops", Tablet = "tablet", Capsule = "capsule",
        Sachet = "sachet", Puff = "puff",
    }
);

stored_enum!(
    TemperatureSite, bad = |_s| one_of(TemperatureSite::NAMES),
    { Ear = "ear", Forehead = "forehead", Armpit = "armpit", Rectal = "rectal", Oral = "oral" }
);

stored_enum!(
    Reaction, bad = |_s| one_of(Reaction::NAMES),
    {
        Loved = "loved", Liked = "liked", Neutral = "neutral", Disliked = "disliked",
        Allergic = "allergic",
    }
);

stored_enum!(
    /// A solids entry's `allergens` are a set of these (stored as a JSON array).
    Allergen, bad = |_s| one_of(Allergen::NAMES),
    {
        Milk = "milk", Egg = "egg", Peanut = "peanut", TreeNut = "treeNut", Soy = "soy",
        Wheat = "wheat", Fish = "fish", Shellfish = "shellfish", Sesame = "sesame",
    }
);

stored_enum!(
    /// A timer's state, set by the server from the fold of its events.
    TimerState, bad = |_s| one_of(TimerState::NAMES),
    { Running = "running", Paused = "paused", Stopped = "stopped" }
);

stored_enum!(
    /// What a caregiver did to a timer (a `timer_event`'s `action`).
    TimerAction, bad = |_s| one_of(TimerAction::NAMES),
    { Pause = "pause", Resume = "resume", SwitchSide = "switchSide", Stop = "stop" }
);

stored_enum!(
    /// The kinds an entry with a timer can be (a `timer_event`'s `entryEntity`).
    TimerEntity, bad = |_s| one_of(TimerEntity::NAMES),
    {
        FeedLog = "feed_log", SleepLog = "sleep_log", PumpingLog = "pumping_log",
        ActivityLog = "activity_log",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_values_say_what_is_allowed() {
        for v in NappyConsistency::ALL {
            assert_eq!(NappyConsistency::parse(v.as_str()), Some(*v));
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(
                serde_json::from_value::<NappyConsistency>(json).unwrap(),
                *v
            );
        }
        let err = serde_json::from_value::<FeedMethod>(serde_json::json!("cup")).unwrap_err();
        assert_eq!(err.to_string(), "must be one of breast, bottle");
        let err = serde_json::from_value::<FeedMethod>(serde_json::json!(null)).unwrap_err();
        assert_eq!(err.to_string(), "must be one of breast, bottle");
        assert!(
            AccessLevel::Owner > AccessLevel::Editor && AccessLevel::Editor > AccessLevel::Viewer
        );
    }

    #[test]
    fn wire_names_are_what_serde_and_the_schema_say() {
        fn check<T: serde::Serialize + utoipa::PartialSchema>(all: &[T], names: &[&str]) {
            let schema = serde_json::to_value(T::schema()).unwrap();
            assert_eq!(schema["enum"], serde_json::json!(names));
            for (v, n) in all.iter().zip(names) {
                assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(n));
            }
        }
        check(AccessLevel::ALL, AccessLevel::NAMES);
        check(Gender::ALL, Gender::NAMES);
        check(FeedMethod::ALL, FeedMethod::NAMES);
        check(Side::ALL, Side::NAMES);
        check(NappyType::ALL, NappyType::NAMES);
        check(NappyColour::ALL, NappyColour::NAMES);
        check(NappyConsistency::ALL, NappyConsistency::NAMES);
        check(ActivityType::ALL, ActivityType::NAMES);
        check(DoseUnit::ALL, DoseUnit::NAMES);
        check(TemperatureSite::ALL, TemperatureSite::NAMES);
        check(Reaction::ALL, Reaction::NAMES);
        check(Allergen::ALL, Allergen::NAMES);
        check(TimerState::ALL, TimerState::NAMES);
        check(TimerAction::ALL, TimerAction::NAMES);
        check(TimerEntity::ALL, TimerEntity::NAMES);
    }
}
