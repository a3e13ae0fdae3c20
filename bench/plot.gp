# Throughput and p99 latency against concurrency, from the pg_2branch lines
# of scripts/bench (turned into "concurrency workflows_per_s p99_ms" rows).
# usage: gnuplot -e "data='rows.dat'; out='plot.png'" bench/plot.gp
set terminal pngcairo size 900,500 font ",11"
set output out
set title "wf on PostgreSQL 15 (fsync on): 2-branch workflows"
set xlabel "concurrent workflows"
set logscale x 2
set xrange [0.8:320]
set xtics (1, 4, 16, 64, 256)
set ylabel "workflows / s"
set y2label "p99 latency (ms)"
set ytics nomirror
set y2tics
set key left top
set grid
plot data using 1:2 with linespoints lw 2 pt 7 title "throughput (workflows/s)" axes x1y1, \
     data using 1:3 with linespoints lw 2 pt 5 dt 2 title "p99 latency (ms)" axes x1y2
