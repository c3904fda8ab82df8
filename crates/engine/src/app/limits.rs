//! Request rate limits, in front of REST and GraphQL alike.
//!
//! A request with a valid access token counts against its user; any other
//! against its client address. Each is allowed a burst of each window's
//! quota, refilled evenly over the window (GCRA, by `governor`): by default
//! 10 a second, 100 a minute and 1,000 an hour, as the stacks this replaces
//! allowed. Past a limit: 429 `RATE_LIMITED` with `Retry-After`; every
//! limited answer carries the IETF `RateLimit-Policy` and `RateLimit`
//! headers.
//!
//! The client address is the connection's peer, unless that peer is a
//! trusted proxy (`BOOKING_TRUSTED_PROXIES`): then it is the right-most
//! address of `X-Forwarded-For` that is not itself a trusted proxy. It is
//! written back as the request's `ConnectInfo`, so every later reader of the
//! address (login and registration limits, websocket caps) sees the same.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;
use uuid::Uuid;
use write_api::ApiError;

/// How many requests per how long: `10/s`, `100/min`, `1000/h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub requests: u32,
    pub per: Duration,
}

impl Window {
    fn name(&self) -> String {
        match self.per.as_secs() {
            1 => "second".into(),
            60 => "minute".into(),
            3600 => "hour".into(),
            86400 => "day".into(),
            s => format!("{s}s"),
        }
    }
}

/// Comma-separated windows, e.g. `10/s,100/min,1000/h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy(pub Vec<Window>);

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let windows = s
            .split(',')
            .map(|w| {
                let (n, unit) = w
                    .trim()
                    .split_once('/')
                    .ok_or_else(|| format!("{w:?} is not <requests>/<s|min|h|day>"))?;
                let requests: u32 = n
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{n:?} is not a positive number of requests"))?;
                let per = match unit.trim() {
                    "s" | "sec" | "second" => Duration::from_secs(1),
                    "min" | "minute" => Duration::from_secs(60),
                    "h" | "hour" => Duration::from_secs(3600),
                    "d" | "day" => Duration::from_secs(86400),
                    other => return Err(format!("{other:?} is not s, min, h or day")),
                };
                Ok(Window { requests, per })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if windows.is_empty() {
            return Err("no window".into());
        }
        Ok(Policy(windows))
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|w| format!("{}/{}", w.requests, w.per.as_secs()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Comma-separated networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies(pub Vec<IpNet>);

impl FromStr for Proxies {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{p:?} is not an address or CIDR network"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Proxies)
    }
}

impl Proxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: the peer itself, or, when it is a trusted
    /// proxy, the right-most forwarded address that is not one.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(peer)
    }
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

struct Limiter {
    window: Window,
    users: Keyed<Uuid>,
    addresses: Keyed<IpAddr>,
}

/// Who a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    User(Uuid),
    Address(IpAddr),
}

/// The limits of one process.
#[derive(Clone)]
pub struct RateLimits {
    limiters: Option<Arc<Vec<Limiter>>>,
    policy_header: Option<HeaderValue>,
    proxies: Proxies,
    tokens: auth::TokenKeys,
    clock: DefaultClock,
}

impl RateLimits {
    /// `policy` for each user and each anonymous address; `None` turns the
    /// limits off (the client address is still resolved).
    pub fn new(policy: Option<&Policy>, proxies: Proxies, tokens: auth::TokenKeys) -> Self {
        let limiters = policy.map(|p| {
            Arc::new(
                p.0.iter()
                    .map(|w| {
                        let n = NonZeroU32::new(w.requests).unwrap_or(NonZeroU32::MIN);
                        let quota = Quota::with_period(w.per / n.get())
                            .unwrap_or_else(|| Quota::per_second(n))
                            .allow_burst(n);
                        Limiter {
                            window: *w,
                            users: RateLimiter::dashmap(quota)
                                .with_middleware::<StateInformationMiddleware>(),
                            addresses: RateLimiter::dashmap(quota)
                                .with_middleware::<StateInformationMiddleware>(),
                        }
                    })
                    .collect(),
            )
        });
        let policy_header = policy.and_then(|p| {
            let text =
                p.0.iter()
                    .map(|w| format!("\"{}\";q={};w={}", w.name(), w.requests, w.per.as_secs()))
                    .collect::<Vec<_>>()
                    .join(", ");
            HeaderValue::from_str(&text).ok()
        });
        Self {
            limiters,
            policy_header,
            proxies,
            tokens,
            clock: DefaultClock::default(),
        }
    }

    fn key(&self, headers: &HeaderMap, ip: Option<IpAddr>) -> Option<Key> {
        let user = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(auth::bearer_token)
            .and_then(|t| self.tokens.verify(t).ok())
            .map(|c| Key::User(c.user_id));
        user.or(ip.map(Key::Address))
    }

    /// Counts one request of `key`: `Ok` with the header of the tightest
    /// window, or `Err` with how long to wait and that header.
    fn count(&self, key: Key) -> Result<Option<HeaderValue>, (Duration, Option<HeaderValue>)> {
        let Some(limiters) = &self.limiters else {
            return Ok(None);
        };
        let mut tightest: Option<(u32, u64, String)> = None;
        for l in limiters.iter() {
            let checked = match key {
                Key::User(u) => l.users.check_key(&u),
                Key::Address(a) => l.addresses.check_key(&a),
            };
            match checked {
                Ok(snapshot) => {
                    let left = snapshot.remaining_burst_capacity();
                    let used = l.window.requests.saturating_sub(left);
                    let reset = (l.window.per.as_secs() * u64::from(used))
                        .div_ceil(u64::from(l.window.requests.max(1)));
                    if tightest.as_ref().is_none_or(|(r, ..)| left < *r) {
                        tightest = Some((left, reset, l.window.name()));
                    }
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                    let header =
                        HeaderValue::from_str(&format!("\"{}\";r=0;t={secs}", l.window.name()))
                            .ok();
                    return Err((Duration::from_secs(secs), header));
                }
            }
        }
        Ok(tightest.and_then(|(r, t, name)| {
            HeaderValue::from_str(&format!("\"{name}\";r={r};t={t}")).ok()
        }))
    }

    /// Forgets keys idle long enough to be full again.
    pub fn prune(&self) {
        if let Some(limiters) = &self.limiters {
            for l in limiters.iter() {
                l.users.retain_recent();
                l.addresses.retain_recent();
                l.users.shrink_to_fit();
                l.addresses.shrink_to_fit();
            }
        }
    }
}

/// Resolves the client address, then counts the request.
pub async fn limit(State(limits): State<RateLimits>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a);
    let ip = peer.map(|p| limits.proxies.client(p.ip(), req.headers()));
    if let (Some(peer), Some(ip)) = (peer, ip) {
        if ip != peer.ip() {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, 0)));
        }
    }
    let Some(key) = limits.key(req.headers(), ip) else {
        return next.run(req).await;
    };
    match limits.count(key) {
        Ok(state) => {
            let mut res = next.run(req).await;
            if let Some(policy) = &limits.policy_header {
                res.headers_mut().insert("ratelimit-policy", policy.clone());
            }
            if let Some(state) = state {
                res.headers_mut().insert("ratelimit", state);
            }
            res
        }
        Err((wait, state)) => {
            metrics::counter!("http_rate_limited_total").increment(1);
            let mut res = ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs(),
            }
            .into_response();
            if let Some(policy) = &limits.policy_header {
                res.headers_mut().insert("ratelimit-policy", policy.clone());
            }
            if let Some(state) = state {
                res.headers_mut().insert("ratelimit", state);
            }
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_read_policies_and_proxies() {
        let p: Policy = "10/s, 100/min,1000/h".parse().unwrap();
        assert_eq!(p.0.len(), 3);
        assert_eq!(p.0[1].requests, 100);
        assert_eq!(p.0[2].per, Duration::from_secs(3600));
        assert!("ten/s".parse::<Policy>().is_err());
        assert!("10/week".parse::<Policy>().is_err());
        assert!("0/s".parse::<Policy>().is_err());
        let proxies: Proxies = "10.0.0.0/8, 192.168.1.1".parse().unwrap();
        assert_eq!(proxies.0.len(), 2);
        assert!("not-a-net".parse::<Proxies>().is_err());
    }

    #[test]
    fn it_should_believe_forwarded_addresses_only_from_trusted_proxies() {
        let proxies: Proxies = "10.0.0.0/8".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 6.6.6.6, 10.0.0.7"),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "5.5.5.5".parse().unwrap();
        // The right-most address the trusted proxies did not add.
        assert_eq!(
            proxies.client(proxy, &headers),
            "6.6.6.6".parse::<IpAddr>().unwrap()
        );
        // Anyone else's header is ignored: a client cannot pick its address.
        assert_eq!(proxies.client(stranger, &headers), stranger);
    }

    #[test]
    fn it_should_refuse_past_the_quota_and_say_when_to_come_back() {
        let tokens =
            auth::TokenKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let limits = RateLimits::new(Some(&"3/min".parse().unwrap()), Proxies::default(), tokens);
        let key = Key::Address("1.2.3.4".parse().unwrap());
        for _ in 0..3 {
            assert!(limits.count(key).is_ok());
        }
        let (wait, header) = limits.count(key).unwrap_err();
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(20));
        assert!(header.unwrap().to_str().unwrap().contains("r=0"));
        // Another address is not affected.
        assert!(limits
            .count(Key::Address("4.3.2.1".parse().unwrap()))
            .is_ok());
    }
}
