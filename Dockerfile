# QubesWeb console. Build: docker build -t qubesweb .
# Run (loopback-only, so share the host's network): docker run --rm --network host -v qubesweb-data:/data qubesweb
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# npm: the build fetches the browser's terminal (xterm.js) and VNC viewer (noVNC) from the npm registry (package-lock.json, npm ci).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN dotnet publish src/QubesWeb/QubesWeb.csproj -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# libvirt0: the client library and its built-in test driver (the demo); qemu-utils: qemu-img/qemu-io for disks.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libvirt0 qemu-utils genisoimage \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app /app
ENV QUBESWEB_DATADIR=/data
VOLUME /data
EXPOSE 8780
ENTRYPOINT ["dotnet", "/app/QubesWeb.dll"]
