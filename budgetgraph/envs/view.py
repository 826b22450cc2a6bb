"""``budgetgraph view``: results files as one self-contained HTML page (no server, no network: it opens from
disk, can be mailed or attached to a CI run). A cost-accuracy plot per file with 95% intervals and hover, the
planner x budget table, and each episode on its budget timeline (every reservation, refusal and commit with
what remained after it), its transcript and its answer against the gold.

Everything from a results file (answers, transcripts, web pages in tool results) is untrusted: it is embedded
as JSON that cannot close the script tag, drawn with ``textContent`` only, and the page's content security
policy allows no network at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .report import rows_as_dicts, summarize

__all__ = ["render_view", "view_data"]

_KEEP = ("task_id", "planner", "budget", "model", "gold", "answer", "stop_reason", "error", "limits", "usage")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def view_data(files: Sequence[tuple[str, Mapping[str, Any], Sequence[Mapping[str, Any]]]]) -> dict[str, Any]:
    """What the page shows, as plain JSON: per results file its config, summary rows and episodes."""
    out = []
    for name, header, records in files:
        episodes = []
        for r in records:
            ep = {k: r.get(k) for k in _KEEP}
            ep["correct"] = float((r.get("scores") or {}).get("correct", 0.0))
            ep["transcript"] = list(r.get("transcript") or [])
            ep["timeline"] = list(r.get("timeline") or [])
            episodes.append(ep)
        config = header.get("config") or {}
        out.append(
            {
                "name": name,
                "env": (header.get("env_info") or {}).get("env") or config.get("env") or "",
                "model": config.get("model") or "",
                "rows": rows_as_dicts(summarize(records)),
                "episodes": episodes,
            }
        )
    data: dict[str, Any] = _finite({"files": out})
    return data


def _embed(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    # every "<" as its JSON escape: no "</script", "<!--" or "<script" can reach the HTML parser, and the block
    # stays valid JSON for the page's JSON.parse
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_view(files: Sequence[tuple[str, Mapping[str, Any], Sequence[Mapping[str, Any]]]]) -> str:
    """The page, as one HTML string."""
    return _PAGE.replace("__DATA__", _embed(view_data(files)))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>budgetgraph results</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{padding:12px 20px;background:#1d2433;color:#fff}
main{display:flex;flex-wrap:wrap;gap:16px;padding:16px}
section.file{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:12px;flex:1 1 560px;min-width:480px}
h2{font-size:16px;margin:0 0 8px}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{border-bottom:1px solid #e6e8ec;padding:3px 6px;text-align:right}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
td:first-child{overflow-wrap:anywhere;max-width:240px}
tr.ep{cursor:pointer} tr.ep:hover{background:#eef3ff}
.ok{color:#137333}.bad{color:#b3261e}
#tip{position:fixed;pointer-events:none;background:#1d2433;color:#fff;padding:4px 8px;border-radius:4px;font-size:12px;display:none}
#episode{position:fixed;top:0;right:0;bottom:0;width:min(720px,100%);background:#fff;border-left:1px solid #d8dce3;overflow:auto;padding:16px;display:none;box-shadow:-4px 0 16px #0002}
#episode pre{white-space:pre-wrap;background:#f6f7f9;padding:6px;border-radius:4px;max-height:200px;overflow:auto;font-size:12px}
.tl td,.tl th{text-align:left}.regime{font-weight:600}.refused{background:#fde7e7}.commit{background:#eef8ee}.refund{background:#fff6e0}
button{cursor:pointer}
</style></head><body>
<header><b>budgetgraph</b> results: cost against accuracy (95% intervals), the table, and each episode's budget timeline</header>
<main id="files"></main>
<div id="tip"></div>
<div id="episode"><button id="close">close</button><div id="ep-body"></div></div>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#3366cc","#dc3912","#ff9900","#109618","#990099","#0099c6","#dd4477","#66aa00"];
function el(tag, attrs, text){const e=document.createElement(tag);for(const k in attrs||{})e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=String(text);return e;}
function svg(tag, attrs){const e=document.createElementNS(SVG,tag);for(const k in attrs)e.setAttribute(k,attrs[k]);return e;}
function fmt(v,d){return v===null||v===undefined?"-":(typeof v==="number"?v.toFixed(d===undefined?3:d):String(v));}
const tip=document.getElementById("tip");
function niceTicks(values){  // an axis around the values (not from 0 when they are close together) in 3-6
  // round steps of 1, 2, 2.5 or 5 x 10^k, with the decimals those steps need
  const lo0=Math.min(...values),hi0=Math.max(...values),span=hi0-lo0;
  const pad=span>0?span*0.15:Math.max(Math.abs(hi0)*0.1,1e-6);
  const lo=Math.max(0,lo0-pad),hi=hi0+pad;
  const raw=(hi-lo)/4,mag=Math.pow(10,Math.floor(Math.log10(raw)));
  const step=[1,2,2.5,5,10].map(m=>m*mag).find(x=>x>=raw*0.999);
  const first=Math.floor(lo/step+1e-9)*step,last=Math.ceil(hi/step-1e-9)*step,ticks=[];
  for(let i=0;first+i*step<=last+step/2;i++)ticks.push(first+i*step);
  const m=step/Math.pow(10,Math.floor(Math.log10(step)+1e-9));
  const digits=Math.max(0,-Math.floor(Math.log10(step)+1e-9)+(Math.abs(m-2.5)<1e-6?1:0));
  return {lo:first,top:last,ticks,digits};
}
function front(rows){  // the Pareto frontier: cheapest first, each more accurate than every cheaper one
  const sorted=[...rows].sort((a,b)=>a.cost_usd-b.cost_usd||b.accuracy-a.accuracy),out=[];let best=-1;
  for(const r of sorted)if(r.accuracy>best){out.push(r);best=r.accuracy;}
  return out;
}
function plot(file){
  const W=560,H=340,L=56,B=44,T=16,R=40;
  const rows=file.rows.filter(r=>r.n>0);
  const s=svg("svg",{width:W,height:H+18*Math.ceil(rows.length/4),viewBox:`0 0 ${W} ${H+18*Math.ceil(rows.length/4)}`,class:"plot"});
  const xt=niceTicks(rows.length?rows.map(r=>r.cost_usd):[0]),YTOP=1.08;
  const X=v=>L+(W-L-R)*(v-xt.lo)/(xt.top-xt.lo), Y=v=>H-B-(H-B-T)*v/YTOP;
  s.appendChild(svg("line",{x1:L,y1:H-B,x2:W-R,y2:H-B,stroke:"#888"}));
  s.appendChild(svg("line",{x1:L,y1:T,x2:L,y2:H-B,stroke:"#888"}));
  for(const v of [0,0.25,0.5,0.75,1]){
    s.appendChild(svg("line",{x1:L,x2:W-R,y1:Y(v),y2:Y(v),stroke:"#eee"}));
    const t=svg("text",{x:L-6,y:Y(v)+4,"text-anchor":"end","font-size":10});t.textContent=v.toFixed(2);s.appendChild(t);}
  for(const v of xt.ticks){
    s.appendChild(svg("line",{x1:X(v),x2:X(v),y1:H-B,y2:H-B+4,stroke:"#888"}));
    const t=svg("text",{x:X(v),y:H-B+16,"text-anchor":"middle","font-size":10});t.textContent=v.toFixed(xt.digits);s.appendChild(t);}
  const xl=svg("text",{x:(L+W-R)/2,y:H-10,"text-anchor":"middle","font-size":11});xl.textContent="mean unified cost per episode ($)";s.appendChild(xl);
  const yl=svg("text",{x:12,y:(T+H-B)/2,"font-size":11,transform:`rotate(-90 12 ${(T+H-B)/2})`,"text-anchor":"middle"});yl.textContent="accuracy";s.appendChild(yl);
  const planners=[...new Set(rows.map(r=>r.planner))];
  const pts=rows.map(r=>{const k=planners.indexOf(r.planner);
    return {r,k,c:COLORS[k%COLORS.length],x:X(r.cost_usd)+(k-(planners.length-1)/2)*7,y:Y(r.accuracy)};});  // dodged
  const f=front(rows).map(r=>pts.find(p=>p.r===r));
  if(f.length){let d=`M${f[0].x},${f[0].y}`;for(let i=1;i<f.length;i++)d+=` H${f[i].x} V${f[i].y}`;d+=` H${W-R}`;
    s.appendChild(svg("path",{d,fill:"none",stroke:"#222","stroke-dasharray":"5 4","stroke-width":1,class:"frontier"}));}
  planners.forEach((name,k)=>{const mine=pts.filter(p=>p.k===k).sort((a,b)=>a.x-b.x);
    if(mine.length>1)s.appendChild(svg("polyline",{points:mine.map(p=>`${p.x},${p.y}`).join(" "),fill:"none",stroke:mine[0].c,"stroke-opacity":0.5}));});
  const placed=[];
  for(const {r,k,c,x,y} of pts){
    const lo=r.accuracy_ci_low,hi=r.accuracy_ci_high;
    if(lo!==null&&hi!==null)s.appendChild(svg("line",{x1:x,x2:x,y1:Y(lo),y2:Y(hi),stroke:c,"stroke-width":1.5}));
    const p=svg("circle",{cx:x,cy:y,r:5,fill:c,class:"point","fill-opacity":0.85});
    p.addEventListener("mousemove",ev=>{tip.style.display="block";tip.style.left=(ev.clientX+12)+"px";tip.style.top=(ev.clientY+12)+"px";
      tip.textContent=`${r.planner} B=${r.budget}: acc ${fmt(r.accuracy)} [${fmt(lo)}, ${fmt(hi)}], n=${r.n}, $${fmt(r.cost_usd,5)}, ${fmt(r.tokens,0)} tokens`;});
    p.addEventListener("mouseleave",()=>{tip.style.display="none";});
    s.appendChild(p);
    const same=pts.filter(q=>q.k===k&&Math.abs(q.x-x)<1&&Math.abs(q.y-y)<1);
    if(same[0].r!==r)continue;  // one label for points that coincide: B=3, 5
    const text=`B=${same.map(q=>q.r.budget).join(", ")}`,w=6*text.length;let ly=y-8;
    const left=x+w+8>W?x-8-w:x+7;  // never past the right edge
    while(placed.some(q=>Math.abs(q.x-left)<w&&Math.abs(q.y-ly)<11))ly-=11;  // another label there: go up
    if(ly<T+8)ly=y+16;
    placed.push({x:left,y:ly});
    const t=svg("text",{x:left,y:ly,"font-size":10,fill:c,class:"point-label"});t.textContent=text;s.appendChild(t);
  }
  let lx=L,ly=H+6;  // the legend, under the axis: it never covers a point
  for(const [i,name] of [...planners.map((n,i)=>[i,n]),[-1,"Pareto frontier"]]){
    const room=Math.floor((W-L)/6.5)-2,whole=(i<0?"- - ":"\\u25cf ")+name;
    const label=whole.length>room?whole.slice(0,room-1)+"\\u2026":whole,w=6.5*label.length+14;  // long labels: cut, whole on hover
    if(lx+w>W-R&&lx>L){lx=L;ly+=16;}
    const t=svg("text",{x:lx,y:ly,"font-size":11,fill:i<0?"#222":COLORS[i%COLORS.length],class:"legend"});t.textContent=label;
    const full=svg("title",{});full.textContent=whole;t.appendChild(full);s.appendChild(t);lx+=w;}
  s.setAttribute("height",ly+8);s.setAttribute("viewBox",`0 0 ${W} ${ly+8}`);
  return s;
}
function table(rows){
  const t=el("table",{class:"summary"}),h=el("tr");
  for(const c of ["planner","budget","n","accuracy","95% interval","tokens","cost $","errors"])h.appendChild(el("th",{},c));
  t.appendChild(h);
  for(const r of rows){const tr=el("tr");
    for(const v of [r.planner,r.budget,r.n,fmt(r.accuracy),`[${fmt(r.accuracy_ci_low)}, ${fmt(r.accuracy_ci_high)}]`,fmt(r.tokens,0),fmt(r.cost_usd,5),r.errors])tr.appendChild(el("td",{},v));
    t.appendChild(tr);}
  return t;
}
function episodes(file){
  const t=el("table",{class:"episodes"}),h=el("tr");
  for(const c of ["task","planner / budget","answer","","stop"])h.appendChild(el("th",{},c));
  t.appendChild(h);
  file.episodes.forEach((ep,i)=>{const tr=el("tr",{class:"ep","data-i":i});
    tr.appendChild(el("td",{},ep.task_id));tr.appendChild(el("td",{},`${ep.planner} B=${ep.budget}`));
    tr.appendChild(el("td",{},String(ep.answer===null?"(none)":ep.answer).slice(0,60)));
    tr.appendChild(el("td",{class:ep.correct>=1?"ok":"bad"},ep.correct>=1?"right":"wrong"));
    tr.appendChild(el("td",{},ep.stop_reason||""));
    tr.addEventListener("click",()=>openEpisode(ep));t.appendChild(tr);});
  return t;
}
function regime(remaining,limits){  // BATS regimes by the scarcest capped resource's remaining fraction
  let f=1;for(const k in remaining){const lim=Number(limits[k]);if(lim>0)f=Math.min(f,Number(remaining[k])/lim);}
  return f>=0.7?"HIGH":f>=0.3?"MEDIUM":f>=0.1?"LOW":"CRITICAL";
}
function openEpisode(ep){
  const box=document.getElementById("ep-body");box.replaceChildren();
  box.appendChild(el("h2",{},`${ep.task_id}: ${ep.planner} B=${ep.budget}`));
  box.appendChild(el("p",{},`answer: ${ep.answer===null?"(none)":ep.answer}`));
  box.appendChild(el("p",{class:ep.correct>=1?"ok":"bad"},`gold: ${JSON.stringify(ep.gold)} (${ep.correct>=1?"right":"wrong"}); stop: ${ep.stop_reason||""}`));
  if(ep.error)box.appendChild(el("p",{class:"bad"},`error: ${ep.error}`));
  box.appendChild(el("h3",{},"budget timeline"));
  const tl=el("table",{class:"tl"}),h=el("tr");
  for(const c of ["t (s)","event","call","amounts","remaining after","regime"])h.appendChild(el("th",{},c));tl.appendChild(h);
  let last="";
  for(const e of ep.timeline){const tr=el("tr",{class:e.event});
    const reg=e.remaining?regime(e.remaining,ep.limits||{}):"";
    tr.appendChild(el("td",{},fmt(e.t,3)));tr.appendChild(el("td",{},e.event+(e.resource?` (${e.resource})`:"")));
    tr.appendChild(el("td",{},e.what));
    tr.appendChild(el("td",{},Object.entries(e.amounts||{}).map(([k,v])=>`${k} ${v}`).join(", ")));
    tr.appendChild(el("td",{},Object.entries(e.remaining||{}).map(([k,v])=>`${k} ${v}`).join(", ")));
    tr.appendChild(el("td",{class:reg&&reg!==last?"regime":""},reg&&reg!==last?`\u2192 ${reg}`:reg));
    if(reg)last=reg;
    tl.appendChild(tr);}
  if(!ep.timeline.length)box.appendChild(el("p",{},"(this results file has no timeline: written before budgetgraph recorded one)"));
  box.appendChild(tl);
  box.appendChild(el("h3",{},"transcript"));
  for(const m of ep.transcript){box.appendChild(el("div",{},`${m.role}${m.tool_calls?" \\u2192 "+m.tool_calls.map(c=>c.name+JSON.stringify(c.arguments)).join(", "):""}`));
    if(m.content)box.appendChild(el("pre",{},m.content));}
  document.getElementById("episode").style.display="block";
}
document.getElementById("close").addEventListener("click",()=>{document.getElementById("episode").style.display="none";});
const host=document.getElementById("files");
for(const f of DATA.files){const sec=el("section",{class:"file"});
  sec.appendChild(el("h2",{},`${f.name} (${f.env||"?"}, ${f.model||"?"}): ${f.episodes.length} episodes`));
  sec.appendChild(plot(f));sec.appendChild(table(f.rows));
  const d=el("details",{}),sm=el("summary",{},"episodes (click one)");d.appendChild(sm);d.appendChild(episodes(f));sec.appendChild(d);
  host.appendChild(sec);}
</script></body></html>
"""
