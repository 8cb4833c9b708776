// The access-review report as one self-contained HTML file. The header and
// the per-rule summary are plain HTML; the people are data (JSON in a
// script element) drawn as a table by a small script, a few hundred rows at
// a time, so that a report of 100,000 people opens in a few seconds. The
// file is a download, never a page of the console: its inline script and
// style are not under the console's Content-Security-Policy.

#include <ostream>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "idsync/daemon/report.h"
#include "idsync/daemon/status.h"

#include "report_internal.h"

namespace idsync::daemon {
namespace {

using namespace report_internal;
using nlohmann::json;

std::string Html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON that is safe inside a <script> element: no '<', '>' or '&' (only
// ever inside strings, where \u escapes mean the same).
std::string ScriptSafe(const std::string& json_text) {
  std::string out;
  out.reserve(json_text.size());
  for (char c : json_text) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
  return out;
}

constexpr char kStyle[] = R"css(
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1a1a1a}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}code{font-size:.85em;word-break:break-all}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #c8c8c8;padding:.2rem .4rem;
text-align:left;vertical-align:top}thead th{background:#eef1f5;position:sticky;top:0}
th small,td small{display:block;color:#555;font-size:11px;font-weight:400}.lv0{color:#6b6b6b}.lv1{color:#0b5394}
.lv2{color:#8a1c1c;font-weight:600}.controls{display:flex;gap:.75rem;align-items:center;
margin:.5rem 0;flex-wrap:wrap}.controls input{font:inherit;padding:.25rem .4rem;min-width:18rem}
button{font:inherit;padding:.25rem .7rem}
@media print{.controls,noscript{display:none}body{margin:0;font-size:11px}
thead{display:table-header-group}tr{break-inside:avoid}thead th{position:static}}
)css";

// Draws the people table from the data element: filter, page, expand.
constexpr char kScript[] = R"js(
(function(){
var D=JSON.parse(document.getElementById('report-data').textContent);
var LV=['none','read','edit'],PAGE=300,shown=PAGE,expanded=false,list=D.people;
var body=document.querySelector('#people tbody'),head=document.querySelector('#people thead');
var filter=document.getElementById('filter'),count=document.getElementById('count');
var more=document.getElementById('more'),toggle=document.getElementById('expand');
function el(tag,text,cls){var e=document.createElement(tag);if(text!==undefined)e.textContent=text;
if(cls)e.className=cls;return e;}
function via(p,r){for(var i=0;i<p[5].length;i++){if(p[5][i][0]===r){return p[5][i][1].map(function(g){
return D.groups[g][0]+': '+D.groups[g][1];}).join(', ');}}return '';}
function cell(p,lo,hi){var c=el('td'),lv=-1,why=-2,same=true;for(var i=lo;i<hi;i++){
var l=+p[3][i];if(lv<0){lv=l;why=p[4][i];}else if(l!==lv||p[4][i]!==why){same=false;}}
if(same){c.appendChild(el('span',LV[lv],'lv'+lv));if(lv>0&&why>=0){
c.appendChild(el('small',D.rules[why]+(via(p,why)?' via '+via(p,why):'')));}}
else{var n=[0,0,0];for(var j=lo;j<hi;j++)n[+p[3][j]]++;
c.appendChild(el('span','mixed','lv1'));c.appendChild(el('small',
[2,1,0].filter(function(k){return n[k];}).map(function(k){return LV[k]+' '+n[k];}).join(', ')));}
return c;}
function columns(){var r=[];D.areas.forEach(function(a){if(expanded){a.items.forEach(function(it){
r.push({label:a.label+' › '+it.label,lo:it.index,hi:it.index+1});});}
else{r.push({label:a.label,lo:a.items[0].index,hi:a.items[a.items.length-1].index+1});}});return r;}
function text(p){if(!p.t){var s=[p[0],p[1],p[2]?'admin':'member'].concat(p[6]);
p[5].forEach(function(m){s.push(D.rules[m[0]]);m[1].forEach(function(g){s.push(D.groups[g][1]);});});
p.t=s.join(' ').toLowerCase();}return p.t;}
function draw(all){var cols=columns();head.textContent='';var hr=el('tr');
['Person','Role','Projects'].concat(cols.map(function(c){return c.label;})).forEach(function(h){
var th=el('th',h);th.scope='col';hr.appendChild(th);});head.appendChild(hr);
var q=filter.value.trim().toLowerCase();list=q?D.people.filter(function(p){return text(p).indexOf(q)>=0;})
:D.people;var n=all?list.length:Math.min(shown,list.length),frag=document.createDocumentFragment();
for(var i=0;i<n;i++){var p=list[i],tr=el('tr'),who=el('th');who.scope='row';who.appendChild(el('span',p[0]));
if(p[1])who.appendChild(el('small',p[1]));tr.appendChild(who);
tr.appendChild(el('td',p[2]?'admin':'member',p[2]?'lv2':''));tr.appendChild(el('td',p[6].join(', ')||'none'));
cols.forEach(function(c){tr.appendChild(cell(p,c.lo,c.hi));});frag.appendChild(tr);}
body.textContent='';body.appendChild(frag);count.textContent=n+' of '+list.length+' people shown';
more.hidden=n>=list.length;}
filter.addEventListener('input',function(){shown=PAGE;draw(false);});
more.addEventListener('click',function(){shown+=PAGE*10;draw(false);});
toggle.addEventListener('click',function(){expanded=!expanded;toggle.textContent=expanded?
'Show areas':'Show items';toggle.setAttribute('aria-pressed',expanded?'true':'false');draw(false);});
window.addEventListener('beforeprint',function(){draw(true);});
window.addEventListener('afterprint',function(){draw(false);});
draw(false);})();
)js";

}  // namespace

void WriteReportHtml(std::ostream& out, const mapping::RuleSet& rules, const ReportPeople& people,
                     const ReportMeta& meta) {
  const mapping::Catalog& catalog = rules.catalog();
  out << "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>idsync access review, " << Html(FormatTime(meta.generated_ms)) << "</title>\n"
      << "<style>" << kStyle << "</style>\n</head>\n<body>\n<main>\n"
      << "<h1>Access review</h1>\n<dl class=\"meta\">\n"
      << "<dt>Generated</dt><dd>" << Html(FormatTime(meta.generated_ms)) << "</dd>\n"
      << "<dt>Configuration</dt><dd>" << Html(meta.config_path) << "<br>SHA-256 <code>"
      << Html(meta.config_sha256) << "</code></dd>\n"
      << "<dt>Audit head</dt><dd><code>"
      << Html(meta.audit_head.empty() ? "(empty log)" : meta.audit_head) << "</code></dd>\n"
      << "<dt>People with access</dt><dd>" << people.size() << "</dd>\n</dl>\n";

  out << "<h2>Rules</h2>\n<table>\n<thead><tr><th scope=\"col\">Rule</th>"
      << "<th scope=\"col\">People</th><th scope=\"col\">Admin</th>"
      << "<th scope=\"col\">Given edit</th><th scope=\"col\">Given read at most</th>"
      << "<th scope=\"col\">Projects</th></tr></thead>\n<tbody>\n";
  for (const RuleSummary& s : SummarizeRules(rules, people)) {
    out << "<tr><th scope=\"row\">" << Html(s.name) << "</th><td>" << s.people << "</td><td>"
        << s.admins << "</td><td>" << s.edit << "</td><td>" << s.read << "</td><td>"
        << Html(s.projects.empty() ? "none" : JoinWith(s.projects, ", ")) << "</td></tr>\n";
  }
  out << "</tbody>\n</table>\n";

  out << "<h2>People</h2>\n<div class=\"controls\">"
      << "<label for=\"filter\">Filter</label><input id=\"filter\" type=\"search\" "
         "placeholder=\"address, name, rule, group, project\">"
      << "<button id=\"expand\" type=\"button\" aria-pressed=\"false\">Show items</button>"
      << "<span id=\"count\" role=\"status\"></span>"
      << "<button id=\"more\" type=\"button\">Show more</button></div>\n"
      << "<noscript><p>The table needs JavaScript; <code>idsync report --format csv</code> "
         "has the same data.</p></noscript>\n"
      << "<table id=\"people\"><thead></thead><tbody></tbody></table>\n</main>\n";

  // The data: areas with their items' indices, rule names, the groups met,
  // and per person [email, name, admin, levels ("012..." per item), why
  // (rule per item, -1 for none), [[rule, [group...]]...], projects].
  json areas = json::array();
  std::size_t index = 0;
  for (const mapping::CatalogArea& area : catalog.areas()) {
    json items = json::array();
    for (const mapping::CatalogItem& item : area.items) {
      items.push_back({{"key", item.key}, {"label", item.label}, {"index", index++}});
    }
    if (!items.empty()) {
      areas.push_back({{"key", area.key}, {"label", area.label}, {"items", std::move(items)}});
    }
  }
  json rule_names = json::array();
  for (const mapping::Rule& rule : rules.rules()) rule_names.push_back(rule.name);
  json groups = json::array();
  std::unordered_map<std::string, int> group_index;
  out << "<script type=\"application/json\" id=\"report-data\">{\"areas\":"
      << ScriptSafe(areas.dump()) << ",\"rules\":" << ScriptSafe(rule_names.dump())
      << ",\"people\":[";
  for (std::size_t n = 0; n < people.size(); ++n) {
    const mapping::PersonAccess& p = *people[n];
    std::string levels;
    json why = json::array();
    for (std::size_t i = 0; i < catalog.item_count(); ++i) {
      const mapping::Level level = LevelOf(p, i);
      levels += static_cast<char>('0' + static_cast<int>(level));
      why.push_back(level == mapping::Level::kNone ? -1 : WhyOf(p, i));
    }
    json matches = json::array();
    for (const mapping::RuleMatch& m : p.matches) {
      json via = json::array();
      for (const mapping::GroupRef& g : m.via) {
        const std::string key = g.source + '\n' + (g.name.empty() ? g.dn : g.name);
        auto [it, added] = group_index.emplace(key, static_cast<int>(groups.size()));
        if (added) groups.push_back({g.source, g.name.empty() ? g.dn : g.name});
        via.push_back(it->second);
      }
      matches.push_back({m.rule, std::move(via)});
    }
    const json row = {p.email,
                      p.name,
                      p.has_access && p.role == mapping::Role::kAdmin ? 1 : 0,
                      levels,
                      std::move(why),
                      std::move(matches),
                      p.has_access ? p.projects : std::vector<std::string>{}};
    out << (n ? "," : "") << ScriptSafe(row.dump());
  }
  out << "],\"groups\":" << ScriptSafe(groups.dump()) << "}</script>\n<script>" << kScript
      << "</script>\n</body>\n</html>\n";
}

}  // namespace idsync::daemon
