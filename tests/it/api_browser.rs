//! A recording plays in a real browser from a signed link: headless
//! Chromium opens a page with `<audio src="<signed link>">`, plays, seeks to
//! the middle, and the page reports what the player saw. Chromium is driven
//! over the DevTools protocol (a minimal WebSocket client below: one
//! `Runtime.evaluate` that awaits the page's result).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pbxbridge::db::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api_recording::{audit, key, link_url, local_call_as, tone_wav};
use crate::api_support::TestApi;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills the browser (the child this test started) when dropped.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The page: plays, checks that time advances, seeks to the middle, and
/// resolves `window.result` with what it saw.
fn page(src: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>pbxbridge recording</title></head><body>
<audio id="a" preload="auto" src="{src}"></audio>
<script>
const sleep = ms => new Promise(r => setTimeout(r, ms));
window.result = new Promise(resolve => {{
  const a = document.getElementById('a');
  const r = {{}};
  a.addEventListener('error', () => resolve({{error: a.error ? a.error.code : -1}}));
  a.addEventListener('loadedmetadata', async () => {{
    r.duration = a.duration;
    try {{ await a.play(); r.played = true; }} catch (e) {{ r.playError = String(e); }}
    r.start = a.currentTime;
    await sleep(1200);
    r.afterPlay = a.currentTime;
    const seeked = new Promise(ok => a.addEventListener('seeked', ok, {{once: true}}));
    r.seekTo = a.duration / 2;
    a.currentTime = r.seekTo;
    await Promise.race([seeked, sleep(5000)]);
    r.afterSeek = a.currentTime;
    await sleep(1200);
    r.later = a.currentTime;
    r.paused = a.paused;
    resolve(r);
  }}, {{once: true}});
}});
</script></body></html>"#
    )
}

/// Serves `html` to every request on a port-0 listener.
async fn serve_page(html: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/")
}

/// Starts Chromium on `url`; its DevTools port.
fn launch(url: &str, profile: &std::path::Path) -> (Browser, u16) {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--remote-debugging-port=0",
            "--autoplay-policy=no-user-gesture-required",
            url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
    let stderr = child.stderr.take().unwrap();
    let browser = Browser(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send(port);
                    sent = true;
                }
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("Chromium printed no DevTools address within 30 s")
        .parse()
        .unwrap();
    (browser, port)
}

/// A WebSocket to one DevTools target: masked text frames out, text frames in.
struct Ws(TcpStream);

impl Ws {
    async fn connect(port: u16, path: &str) -> Ws {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: cGJ4YnJpZGdlLXRlc3Qtd3M=\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "DevTools: {head}");
        Ws(s)
    }

    async fn send(&mut self, text: &str) {
        let data = text.as_bytes();
        let mut frame = vec![0x81u8];
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x5a, 0x17, 0xc3, 0x09];
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.0.write_all(&frame).await.unwrap();
    }

    /// The next whole text message (continuations joined; pings answered).
    async fn recv(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.0.read_exact(&mut h).await.unwrap();
            let (fin, opcode) = (h[0] & 0x80 != 0, h[0] & 0x0f);
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.0.read_exact(&mut b).await.unwrap();
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.0.read_exact(&mut b).await.unwrap();
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.0.read_exact(&mut payload).await.unwrap();
            match opcode {
                0x9 => {
                    let mut pong = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    pong.extend_from_slice(&payload);
                    self.0.write_all(&pong).await.unwrap();
                }
                0x8 => panic!("DevTools closed the connection"),
                _ => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).unwrap();
                    }
                }
            }
        }
    }
}

/// The page's `window.result`, once it resolves.
async fn page_result(port: u16) -> serde_json::Value {
    let list: Vec<serde_json::Value> = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws_url = list
        .iter()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .unwrap_or_else(|| panic!("no page target: {list:?}"))
        .to_owned();
    let path = ws_url
        .split_once("127.0.0.1:")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
        .unwrap();
    let mut ws = Ws::connect(port, &path).await;
    // The page may still be loading: wait for window.result to exist.
    let expr = "new Promise(ok => { const w = () => window.result ? ok(window.result) \
                : setTimeout(w, 50); w(); })";
    // A navigation still under way destroys the context the first tries
    // run in: try again, a bounded number of times.
    for id in 1..=40 {
        let call = serde_json::json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": {"expression": expr, "awaitPromise": true, "returnByValue": true},
        });
        ws.send(&call.to_string()).await;
        let msg = loop {
            let msg: serde_json::Value = serde_json::from_str(&ws.recv().await).unwrap();
            if msg["id"] == id {
                break msg;
            }
        };
        let value = &msg["result"]["result"]["value"];
        if value.is_object() {
            return value.clone();
        }
        assert!(
            msg["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("context")),
            "DevTools answered {msg}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the page never ran its script");
}

#[tokio::test]
async fn a_signed_link_plays_and_seeks_in_chromium() {
    // A 10-minute call (19 MB at 8 kHz stereo): too large for the player to
    // have buffered the middle by the time it seeks, so the seek is a Range
    // request from the middle of the file.
    let talk = 600.0;
    plays_and_seeks(&tone_wav(talk, 8_000), "wav", talk, "audio/wav").await;
}

/// The same with an Ogg/Opus recording (`recording.format = "opus"`), as
/// the recorder writes it.
#[tokio::test]
async fn an_ogg_opus_recording_plays_and_seeks_in_chromium() {
    let talk = 600.0;
    let rate = 16_000u32;
    let mut w =
        pbxbridge::codec::ogg_opus::OggOpusWriter::new(Vec::new(), rate, 2, 32_000, 7).unwrap();
    let frames = (talk * f64::from(rate)) as usize;
    let mut pcm = Vec::with_capacity(2 * rate as usize);
    for i in 0..frames {
        let t = i as f64 / f64::from(rate);
        let s = ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16;
        pcm.extend([s, s / 2]);
        if pcm.len() >= 2 * rate as usize {
            w.write(&pcm).unwrap();
            pcm.clear();
        }
    }
    w.write(&pcm).unwrap();
    let ogg = w.finish().unwrap();
    plays_and_seeks(&ogg, "ogg", talk, "audio/ogg").await;
}

async fn plays_and_seeks(file: &[u8], ext: &str, talk: f64, content_type: &str) {
    assert!(
        std::path::Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: run scripts/test.sh, which installs Debian's chromium \
         (apt-get install chromium) for this test"
    );
    let api = TestApi::start(Backend::Sqlite).await;
    let wav = file;
    let row = local_call_as(&api, "browser@host", wav, ext).await;
    let (key_id, token) = key(&api, "agent", Some("u7")).await;
    crate::db_support::exec(
        &api.db,
        &api.db.sql(&format!(
            "UPDATE {{calls}} SET agent_id = 'u7' WHERE id = {row}"
        )),
    )
    .await;
    let link = link_url(&api, row, &token, serde_json::json!({"expires_in": 300})).await;
    let head = reqwest::Client::new()
        .get(api.url(&link))
        .header(reqwest::header::RANGE, "bytes=0-15")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap(),
        content_type
    );
    let page_url = serve_page(page(&api.url(&link))).await;
    let profile = tempfile::tempdir().unwrap();
    let (_browser, port) = launch(&page_url, profile.path());
    let result = tokio::time::timeout(Duration::from_secs(60), page_result(port))
        .await
        .expect("the page reported nothing within 60 s");
    eprintln!("api_browser: the player saw {result}");

    assert!(result.get("error").is_none(), "the player failed: {result}");
    let duration = result["duration"].as_f64().unwrap();
    assert!(
        (duration - talk).abs() <= 0.1,
        "duration {duration} s, talk time {talk} s: {result}"
    );
    assert_eq!(result["played"], true, "{result}");
    let after_play = result["afterPlay"].as_f64().unwrap();
    assert!(
        after_play > result["start"].as_f64().unwrap() + 0.2,
        "playback did not advance: {result}"
    );
    let seek_to = result["seekTo"].as_f64().unwrap();
    let after_seek = result["afterSeek"].as_f64().unwrap();
    assert!(
        (after_seek - seek_to).abs() < 0.5,
        "the seek did not land: {result}"
    );
    let later = result["later"].as_f64().unwrap();
    assert!(
        later > after_seek + 0.2,
        "playback did not go on after the seek: {result}"
    );

    // The player's requests were Range requests, audited under the link's key.
    let rows = audit(&api, row).await;
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.key_id == key_id), "{rows:?}");
    let ranged = rows.iter().filter(|r| r.http_status == 206).count();
    assert!(ranged >= 1, "no Range request was served: {rows:?}");
    let mid = wav.len() as i64 / 4;
    assert!(
        rows.iter()
            .any(|r| r.http_status == 206 && r.range_start.is_some_and(|s| s > mid)),
        "the seek was not served by a Range request from the middle: {rows:?}"
    );
    eprintln!(
        "api_browser: {} requests, {ranged} answered 206: {:?}",
        rows.len(),
        rows.iter()
            .map(|r| (r.http_status, r.range_start, r.range_end))
            .collect::<Vec<_>>()
    );
    api.stop().await;
}
