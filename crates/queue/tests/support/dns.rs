//! A DNS responder on loopback (UDP and TCP on one port) answering from a table, with the AD
//! bit for names marked secure, NXDOMAIN for unknown names and SERVFAIL on demand.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, MX, TLSA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Zone {
    records: HashMap<(String, RecordType), Vec<RData>>,
    secure: HashSet<String>,
    servfail: HashSet<String>,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    pub async fn start() -> DnsServer {
        // One port for both: bind UDP where the kernel likes, then TCP on the same number.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let udp_zone = zone.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(answer) = answer(&udp_zone, &buf[..len]) {
                    let _ = udp.send_to(&answer, peer).await;
                }
            }
        });
        let tcp_zone = zone.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = tcp.accept().await else {
                    return;
                };
                let zone = tcp_zone.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if stream.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if stream.read_exact(&mut query).await.is_err() {
                            return;
                        }
                        let Some(answer) = answer(&zone, &query) else {
                            return;
                        };
                        let len = u16::try_from(answer.len()).unwrap().to_be_bytes();
                        if stream.write_all(&len).await.is_err()
                            || stream.write_all(&answer).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        DnsServer {
            addr,
            zone,
            tasks: vec![udp_task, tcp_task],
        }
    }

    fn add(&self, name: &str, rdata: RData) {
        let record_type = rdata.record_type();
        self.zone
            .lock()
            .unwrap()
            .records
            .entry((key(name), record_type))
            .or_default()
            .push(rdata);
    }

    pub fn mx(&self, domain: &str, preference: u16, exchange: &str) {
        let exchange = Name::from_ascii(format!("{}.", key(exchange))).unwrap();
        self.add(domain, RData::MX(MX::new(preference, exchange)));
    }

    /// RFC 7505: `MX 0 .`.
    pub fn null_mx(&self, domain: &str) {
        self.add(domain, RData::MX(MX::new(0, Name::root())));
    }

    pub fn address(&self, name: &str, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.add(name, RData::A(A(v4))),
            IpAddr::V6(v6) => self.add(name, RData::AAAA(AAAA(v6))),
        }
    }

    pub fn tlsa(&self, name: &str, usage: u8, selector: u8, matching: u8, data: Vec<u8>) {
        let tlsa = TLSA::new(
            CertUsage::from(usage),
            Selector::from(selector),
            Matching::from(matching),
            data,
        );
        self.add(name, RData::TLSA(tlsa));
    }

    /// Answers for `name` carry the AD bit, as from a validating resolver.
    pub fn secure(&self, name: &str) {
        self.zone.lock().unwrap().secure.insert(key(name));
    }

    pub fn servfail(&self, name: &str) {
        self.zone.lock().unwrap().servfail.insert(key(name));
    }
}

fn answer(zone: &Mutex<Zone>, query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first()?.clone();
    let name = key(&question.name().to_ascii());
    let mut response = Message::response(request.metadata.id, OpCode::Query);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_query(question.clone());
    let zone = zone.lock().unwrap();
    if zone.servfail.contains(&name) {
        response.metadata.response_code = ResponseCode::ServFail;
    } else if let Some(found) = zone.records.get(&(name.clone(), question.query_type())) {
        response.add_answers(
            found
                .iter()
                .map(|rdata| Record::from_rdata(question.name().clone(), 60, rdata.clone())),
        );
        response.metadata.authentic_data = zone.secure.contains(&name);
    } else if zone.records.keys().any(|(owner, _)| *owner == name) {
        response.metadata.authentic_data = zone.secure.contains(&name);
    } else {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    response.to_vec().ok()
}
