// report.html's step filter: steps whose text (or whose run's heading) holds the query stay; runs without
// such a step hide. #q=text in the address pre-fills it. It reads textContent only: no markup is made.
(function(){
var q=document.getElementById('q'),count=document.getElementById('qcount');
function filter(){
  var text=q.value.trim().toLowerCase(),shown=0,total=0,runsShown=0;
  document.querySelectorAll('details.run').forEach(function(run){
    var head=run.querySelector('summary').textContent.toLowerCase().indexOf(text)>=0,any=false;
    run.querySelectorAll('li.step').forEach(function(st){
      total++;var own=text&&st.textContent.toLowerCase().indexOf(text)>=0,hit=!text||head||own;
      st.hidden=!hit;if(hit){shown++;any=true;}
      if(own){st.querySelector('details').open=true;}
    });
    run.hidden=!!text&&!any&&!head;if(!run.hidden){runsShown++;}
    if(text){run.open=!run.hidden;}
  });
  count.textContent=text?(shown+' of '+total+' steps in '+runsShown+' runs match'):(total+' steps');
}
var m=location.hash.match(/^#q=(.*)$/);
if(m){try{q.value=decodeURIComponent(m[1]);}catch(e){q.value=m[1];}}
q.addEventListener('input',filter);filter();
})();
