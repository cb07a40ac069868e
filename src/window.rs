//! Maintenance windows: the weekly times in which an unattended upgrade may
//! stop the product, in the window's own time zone (daylight saving aware).

use std::fmt;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned};

/// The longest window: a week (a window is always closed for a while).
const MAX_LENGTH: SignedDuration = SignedDuration::from_hours(7 * 24);

/// One weekly maintenance window: it opens at `start` on each of `days` (in
/// `tz`) and stays open for `length`. A window may run past midnight; the
/// day is the day it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The days it opens on; never empty.
    pub days: Vec<Weekday>,
    /// When it opens, local time in `tz`.
    pub start: Time,
    /// How long it stays open: more than zero, at most a week.
    pub length: SignedDuration,
    /// The time zone `start` is read in.
    pub tz: TimeZone,
    /// The time zone's name as configured (`None`: the system's).
    pub tz_name: Option<String>,
}

/// One opening of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// When it opens.
    pub start: Zoned,
    /// When it closes.
    pub end: Zoned,
}

impl Opening {
    /// Whether `now` is inside it.
    pub fn contains(&self, now: Timestamp) -> bool {
        self.start.timestamp() <= now && now < self.end.timestamp()
    }
}

impl fmt::Display for Opening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} until {}",
            self.start.strftime("%a %Y-%m-%d %H:%M %Z"),
            self.end.strftime("%a %H:%M %Z")
        )
    }
}

impl Window {
    /// Parses the configured parts; errors name the part that is wrong.
    pub fn parse(
        days: &[String],
        start: &str,
        length: &str,
        time_zone: Option<&str>,
    ) -> Result<Window, WindowError> {
        if days.is_empty() {
            return Err(WindowError::Days("must name at least one day".into()));
        }
        let days = days
            .iter()
            .map(|d| parse_day(d))
            .collect::<Result<Vec<_>, _>>()?;
        let start = parse_start(start)?;
        let length = parse_length(length)?;
        let tz = match time_zone {
            None => TimeZone::system(),
            Some(name) => TimeZone::get(name)
                .map_err(|e| WindowError::TimeZone(format!("unknown time zone {name:?}: {e}")))?,
        };
        Ok(Window {
            days,
            start,
            length,
            tz,
            tz_name: time_zone.map(str::to_owned),
        })
    }

    /// The opening that contains `now`, if any.
    pub fn open_at(&self, now: Timestamp) -> Option<Opening> {
        let today = now.to_zoned(self.tz.clone()).date();
        // A window opened on an earlier day may still be open.
        let back = self.length.as_hours() / 24 + 1;
        (0..=back)
            .filter_map(|k| today.checked_sub(k.days()).ok())
            .filter_map(|date| self.opening_on(date))
            .find(|o| o.contains(now))
    }

    /// The opening that contains `now`, or else the next one.
    pub fn next_after(&self, now: Timestamp) -> Option<Opening> {
        if let Some(open) = self.open_at(now) {
            return Some(open);
        }
        let today = now.to_zoned(self.tz.clone()).date();
        (0..=8)
            .filter_map(|k| today.checked_add(k.days()).ok())
            .filter_map(|date| self.opening_on(date))
            .find(|o| o.start.timestamp() > now)
    }

    /// The opening on `date`, when the window opens that day.
    fn opening_on(&self, date: jiff::civil::Date) -> Option<Opening> {
        if !self.days.contains(&date.weekday()) {
            return None;
        }
        // A start in a daylight-saving gap moves forward (the usual rule).
        let start = date
            .to_datetime(self.start)
            .to_zoned(self.tz.clone())
            .ok()?;
        let end = start.checked_add(self.length).ok()?;
        Some(Opening { start, end })
    }
}

/// The opening of any of `windows` that contains `now`.
pub fn open_at(windows: &[Window], now: Timestamp) -> Option<Opening> {
    windows.iter().find_map(|w| w.open_at(now))
}

/// The earliest opening of any of `windows` that contains `now` or comes
/// after it.
pub fn next_after(windows: &[Window], now: Timestamp) -> Option<Opening> {
    windows
        .iter()
        .filter_map(|w| w.next_after(now))
        .min_by_key(|o| o.start.timestamp())
}

/// What is wrong with a window's definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `days`.
    #[error("{0}")]
    Days(String),
    /// `start`.
    #[error("{0}")]
    Start(String),
    /// `length`.
    #[error("{0}")]
    Length(String),
    /// `time_zone`.
    #[error("{0}")]
    TimeZone(String),
}

impl WindowError {
    /// The config key the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            WindowError::Days(_) => "days",
            WindowError::Start(_) => "start",
            WindowError::Length(_) => "length",
            WindowError::TimeZone(_) => "time_zone",
        }
    }
}

fn parse_day(text: &str) -> Result<Weekday, WindowError> {
    let lower = text.trim().to_ascii_lowercase();
    let day = match lower.as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => {
            return Err(WindowError::Days(format!(
                "{text:?} is not a day; use Mon, Tue, Wed, Thu, Fri, Sat or Sun"
            )));
        }
    };
    Ok(day)
}

fn parse_start(text: &str) -> Result<Time, WindowError> {
    let bad = || WindowError::Start(format!("{text:?} is not a time of day such as \"02:00\""));
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

fn parse_length(text: &str) -> Result<SignedDuration, WindowError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        WindowError::Length(format!(
            "{text:?} is not a duration such as \"2h\" or \"90min\": {e}"
        ))
    })?;
    let d = SignedDuration::try_from(d)
        .map_err(|_| WindowError::Length(format!("{text:?} is too long")))?;
    if d < SignedDuration::from_mins(1) || d > MAX_LENGTH {
        return Err(WindowError::Length(format!(
            "{text:?}: a window lasts at least 1 minute and at most 7 days"
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[&str], start: &str, length: &str, tz: &str) -> Window {
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        Window::parse(&days, start, length, Some(tz)).unwrap()
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn open_inside_and_closed_outside() {
        // 2026-11-21 is a Saturday.
        let w = window(&["Sat"], "02:00", "2h", "UTC");
        assert!(w.open_at(ts("2026-11-21T02:00:00Z")).is_some());
        assert!(w.open_at(ts("2026-11-21T03:59:59Z")).is_some());
        assert!(w.open_at(ts("2026-11-21T04:00:00Z")).is_none());
        assert!(w.open_at(ts("2026-11-21T01:59:59Z")).is_none());
        assert!(w.open_at(ts("2026-11-22T02:30:00Z")).is_none());
    }

    #[test]
    fn a_window_past_midnight_belongs_to_the_day_it_opens() {
        let w = window(&["Sun"], "23:00", "3h", "UTC");
        // Monday 01:00 is inside Sunday's window.
        assert!(w.open_at(ts("2026-11-23T01:00:00Z")).is_some());
        // Sunday 01:00 is not (Saturday has no window).
        assert!(w.open_at(ts("2026-11-22T01:00:00Z")).is_none());
    }

    #[test]
    fn the_time_zone_is_the_windows_own() {
        // 02:00 in Berlin in November (CET, +01:00) is 01:00 UTC.
        let w = window(&["Sat"], "02:00", "1h", "Europe/Berlin");
        assert!(w.open_at(ts("2026-11-21T01:30:00Z")).is_some());
        assert!(w.open_at(ts("2026-11-21T02:30:00Z")).is_none());
        // In July (CEST, +02:00) it is 00:00 UTC.
        assert!(w.open_at(ts("2026-07-18T00:30:00Z")).is_some());
    }

    #[test]
    fn a_start_in_a_daylight_saving_gap_moves_forward() {
        // 2026-03-29 (Sunday): Berlin jumps from 02:00 to 03:00.
        let w = window(&["Sun"], "02:30", "1h", "Europe/Berlin");
        let o = w.next_after(ts("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(o.start.timestamp(), ts("2026-03-29T01:30:00Z"));
        assert_eq!(o.end.timestamp(), ts("2026-03-29T02:30:00Z"));
    }

    #[test]
    fn next_window_is_the_current_one_or_the_earliest_to_come() {
        let sat = window(&["Sat"], "02:00", "2h", "UTC");
        let wed = window(&["Wed"], "22:00", "1h", "UTC");
        let now = ts("2026-11-21T05:00:00Z"); // Saturday, after the window
        let next = next_after(&[sat.clone(), wed], now).unwrap();
        assert_eq!(next.start.timestamp(), ts("2026-11-25T22:00:00Z"));
        let inside = ts("2026-11-21T03:00:00Z");
        let cur = next_after(std::slice::from_ref(&sat), inside).unwrap();
        assert_eq!(cur.start.timestamp(), ts("2026-11-21T02:00:00Z"));
        assert!(cur.contains(inside));
        assert!(open_at(&[sat], now).is_none());
    }

    #[test]
    fn bad_definitions_name_the_part() {
        let e = |days: &[&str], start: &str, length: &str, tz: Option<&str>| {
            let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
            Window::parse(&days, start, length, tz).unwrap_err().key()
        };
        assert_eq!(e(&[], "02:00", "2h", None), "days");
        assert_eq!(e(&["Caturday"], "02:00", "2h", None), "days");
        assert_eq!(e(&["Sat"], "25:00", "2h", None), "start");
        assert_eq!(e(&["Sat"], "2", "2h", None), "start");
        assert_eq!(e(&["Sat"], "02:00", "soon", None), "length");
        assert_eq!(e(&["Sat"], "02:00", "8days", None), "length");
        assert_eq!(
            e(&["Sat"], "02:00", "2h", Some("Mars/Olympus")),
            "time_zone"
        );
        assert!(Window::parse(&["saturday".into()], "2:05", "90min", None).is_ok());
    }
}
