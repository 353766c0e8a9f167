//! A headless Debian chromium driven through chromedriver's W3C WebDriver
//! protocol (plain JSON over HTTP on the loopback), for tests that look at
//! a page as a browser lays it out: element sizes, links followed, pixels.
//!
//! Chromium is started with the flags this machine needs (no sandbox as
//! root, no GPU, and nothing that reaches out to the network) and a fresh
//! profile in a temporary directory; dropping the [`Browser`] ends the
//! session, stops chromedriver and removes the directory, also when a test
//! panics. A missing chromium fails the test, naming the Debian packages:
//! a browser test that skips itself silently would pass on a machine that
//! checks nothing.

use std::{
    fs::File,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium's flags: headless without a sandbox (tests run as root) or a
/// GPU, and none of the background traffic (updates, sync, QUIC probes)
/// that would try to reach Google from a machine with no network.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    "--force-device-scale-factor=1",
];

/// How often chromedriver is asked whether it is up before the test gives
/// up on it, 50 ms apart: a bound on a hang, not a measure of speed.
const READY_TRIES: u32 = 600;

/// WebDriver's key for an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An element found in the page.
#[derive(Debug, Clone)]
pub struct Element(String);

/// One chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    dir: tempfile::TempDir,
}

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: this test needs Debian's packages chromium and chromium-driver \
         (apt-get install chromium chromium-driver; `cargo xtask setup` installs them)"
    );
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("its address").port()
}

impl Browser {
    /// Starts chromedriver and a chromium session; panics (naming the
    /// packages) when either is not installed.
    pub fn start() -> Browser {
        require(CHROMIUM);
        require(CHROMEDRIVER);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("chromedriver.log");
        let port = free_port();
        let out = File::create(&log).expect("chromedriver's log");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // WebDriver errors come as 4xx/5xx with a JSON body to read.
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
            dir,
        };
        browser.wait_ready(&log);
        let profile = browser.dir.path().join("profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            }}})),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"))
            .to_string();
        browser
    }

    fn wait_ready(&mut self, log: &Path) {
        for _ in 0..READY_TRIES {
            if let Some(status) = self.driver.try_wait().expect("chromedriver's status") {
                panic!(
                    "chromedriver exited ({status}):\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            let ready = self
                .agent
                .get(format!("{}/status", self.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "chromedriver did not come up:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    /// A WebDriver command: its `value`, or a panic with the driver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: reading the answer: {e}"));
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}: {text}"));
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens a file and waits for it to load (WebDriver's normal page load
    /// strategy returns once the document is complete).
    pub fn open(&self, file: &Path) {
        let url = format!("file://{}", file.display());
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page
    /// and returns what it returns.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Like [`Browser::execute`] for a script that calls its last argument
    /// back with its result (to await an image's decoding, say).
    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/async"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Element {
        let v = self.call(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        Element(
            v[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("no element for {css}: {v}"))
                .to_string(),
        )
    }

    /// Clicks an element as a user would (scrolled into view, at its
    /// centre, refused when something else covers it).
    pub fn click(&self, e: &Element) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/click", e.0)),
            Some(json!({})),
        );
    }

    /// A screenshot of just the element, as base64 PNG.
    pub fn screenshot(&self, e: &Element) -> String {
        self.call(
            "GET",
            &self.session_path(&format!("/element/{}/screenshot", e.0)),
            None,
        )
        .as_str()
        .expect("a base64 PNG")
        .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Ends chromium; errors do not matter on the way out.
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
