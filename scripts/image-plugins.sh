#!/bin/sh
# Run by the Dockerfile's plugins stage: copies the GStreamer plugins the media pipeline uses,
# and the shared libraries they load that the runtime image does not have yet, under DEST. Debian
# packages GStreamer in four large plugin sets whose dependencies (GTK, Mesa, LLVM, systemd…)
# would triple the image; only what these plugins load is taken. For each Debian package a file
# comes from, its dpkg status goes to DEST/var/lib/dpkg/status.d/ (as distroless images keep it,
# so image scanners see the versions) and its copyright file along.
#
#   image-plugins.sh DEST BASE_PACKAGES   (BASE_PACKAGES: the packages the runtime image has)
set -eu
dest=$1
base=$2

# What tuskd's pipelines create (elements in parentheses) and what decodebin needs to read what
# people upload: the demuxers and parsers of MP4/MOV, Matroska/WebM, MPEG-TS/PS, AVI, FLV, ASF,
# MXF, Ogg, WAV, AIFF, FLAC, MP3 and WavPack, and the decoders of libav (every common codec),
# vpx, Opus, Vorbis, Theora, mpg123 and FLAC.
plugins="
coreelements app playback typefindfunctions pbtypes
videoconvertscale videorate audioconvert audioresample volume
videofilter deinterlace multifile
isomp4 matroska avi flv asf mxf ogg wavparse aiff auparse mpegtsdemux mpegpsdemux
audioparsers videoparsersbad opusparse id3demux apetag
libav vpx opus vorbis theora mpg123 flac wavpack jpeg png alaw mulaw
x264 voaacenc mpegtsmux hls
"
# (filesrc, filesink, queue, tee, capsfilter, fakesink: coreelements; decodebin: playback;
# videoconvert, videoscale: videoconvertscale; videoflip: videofilter; splitmuxsink: multifile;
# mp4mux: isomp4; aacparse: audioparsers; h264parse: videoparsersbad; x264enc: x264;
# voaacenc: voaacenc; hlssink2: hls, with mpegtsmux.)

plugin_dir=$(dirname "$(ls /usr/lib/*/gstreamer-1.0/libgstcoreelements.so)")
files=$(ls /usr/lib/*/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner)
for p in $plugins; do
  [ -f "$plugin_dir/libgst$p.so" ] || { echo "no GStreamer plugin $p" >&2; exit 1; }
  files="$files $plugin_dir/libgst$p.so"
done
libs=$(for f in $files; do ldd "$f"; done | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)

owners=""
for f in $files $libs; do
  owner=$(dpkg -S "*/$(basename "$(readlink -f "$f")")" | head -1 | cut -d: -f1)
  grep -qx "$owner" "$base" && continue
  # The directory as it really is (/lib is a link to /usr/lib), the file under the name it was
  # loaded by, its content followed through links (alternatives included).
  dir=$dest$(readlink -f "$(dirname "$f")")
  mkdir -p "$dir"
  cp -L "$f" "$dir/"
  owners="$owners $owner"
done

mkdir -p "$dest/var/lib/dpkg/status.d"
for o in $(echo "$owners" | tr ' ' '\n' | sort -u); do
  dpkg-query -s "$o" >"$dest/var/lib/dpkg/status.d/$o"
  if [ -f "/usr/share/doc/$o/copyright" ]; then
    mkdir -p "$dest/usr/share/doc/$o"
    cp "/usr/share/doc/$o/copyright" "$dest/usr/share/doc/$o/"
  fi
done
echo "$(echo "$files" | wc -w) plugin files, $(echo "$libs" | wc -w) libraries, from $(echo "$owners" | tr ' ' '\n' | sort -u | grep -c .) packages"
