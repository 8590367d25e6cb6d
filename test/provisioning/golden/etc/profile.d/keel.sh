# Managed by Keel: login shells dump no core, and an interactive one left idle for 15 minutes
# ends (Pulumi's commands are not login shells and never read this).
ulimit -c 0
case $- in
  *i*) [ "${TMOUT:-}" = 900 ] || { TMOUT=900; readonly TMOUT; export TMOUT; } ;;
esac
