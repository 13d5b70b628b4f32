// A qube's screen on a real qemu domain that a real libvirtd runs: the domain XML gives it a VNC display on a unix
// socket (no TCP port on the host) and a VGA card, and virDomainScreenshot reads the picture through libvirt. The lane's
// small guest clears it and writes its banner on it.
using System.Text;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealScreenTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    /// <summary>
    /// Width, height and the number of lit (not black) pixels of an 8-bit RGB or RGBA PNG (what qemu's screendump writes):
    /// its IDAT chunks inflated and each row's filter undone, as the PNG specification says.
    /// </summary>
    private static (int Width, int Height, int Lit) ReadPng(byte[] data)
    {
        Assert.True(data.AsSpan(0, 8).SequenceEqual(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }), "not a PNG");
        int width = 0, height = 0, bpp = 0;
        using var idat = new MemoryStream();
        for (var at = 8; at < data.Length;)
        {
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(at));
            var type = Encoding.ASCII.GetString(data, at + 4, 4);
            var body = data.AsSpan(at + 8, length);
            if (type == "IHDR")
            {
                width = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(body);
                height = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(body[4..]);
                Assert.Equal(8, body[8]);
                bpp = body[9] switch { 2 => 3, 6 => 4, var t => throw new InvalidDataException($"PNG colour type {t}") };
            }
            else if (type == "IDAT") idat.Write(body);
            at += 12 + length;
        }
        idat.Position = 0;
        using var inflated = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(idat, System.IO.Compression.CompressionMode.Decompress)) z.CopyTo(inflated);
        var raw = inflated.ToArray();
        var stride = width * bpp;
        Assert.Equal((stride + 1) * height, raw.Length);
        var previous = new byte[stride];
        var lit = 0;
        for (var y = 0; y < height; y++)
        {
            var filter = raw[y * (stride + 1)];
            var row = raw.AsSpan(y * (stride + 1) + 1, stride);
            for (var x = 0; x < stride; x++)
            {
                int a = x >= bpp ? row[x - bpp] : 0, b = previous[x], c = x >= bpp ? previous[x - bpp] : 0;
                row[x] += filter switch
                {
                    0 => 0,
                    1 => (byte)a,
                    2 => (byte)b,
                    3 => (byte)((a + b) / 2),
                    4 => (byte)Paeth(a, b, c),
                    _ => throw new InvalidDataException($"PNG filter {filter}"),
                };
            }
            for (var x = 0; x + 2 < stride; x += bpp)
                if ((row[x] | row[x + 1] | row[x + 2]) != 0) lit++;
            row.CopyTo(previous);
        }
        return (width, height, lit);
    }

    /// <summary>Into artifacts/screenshots (git-ignored), as the browser tests keep theirs, for people to look at.</summary>
    private static void SaveForPeople(byte[] png, string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "QubesWeb.sln"))) dir = dir.Parent;
        if (dir is null) return;
        File.WriteAllBytes(Path.Combine(Directory.CreateDirectory(Path.Combine(dir.FullName, "artifacts", "screenshots")).FullName, name), png);
    }

    private static int Paeth(int a, int b, int c)
    {
        var p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    [Fact]
    public async Task A_running_qube_has_a_display_on_a_unix_socket_and_its_screenshot_shows_the_guests_text()
    {
        _ = daemon; // started by the fixture
        var name = "qwt-screen-" + Guid.NewGuid().ToString("N")[..10];
        using var connect = Connect.Open(RealLibvirtd.Uri);
        using var hypervisor = RealLibvirtd.OpenHypervisor();
        try
        {
            using var domain = connect.DefineDomainXml(guest.DomainXml(name));
            domain.Create();
            var devices = System.Xml.Linq.XDocument.Parse(domain.GetXmlDesc()).Root!.Element("devices")!;
            var graphics = Assert.Single(devices.Elements("graphics"));
            Assert.Equal("vnc", graphics.Attribute("type")?.Value);
            Assert.Equal("socket", graphics.Element("listen")?.Attribute("type")?.Value);
            Assert.Null(graphics.Attribute("port"));
            Assert.StartsWith("/", graphics.Attribute("socket")?.Value ?? graphics.Element("listen")?.Attribute("socket")?.Value);
            Assert.Equal("vga", devices.Element("video")?.Element("model")?.Attribute("type")?.Value);

            // The guest's init clears the screen and writes its banner eight times (TestGuest.ScreenText): far more lit
            // pixels than the firmware's two lines before it (this font lights some 20 of a text cell's 9x16 pixels; the
            // banner's 8 lines light about 7600, the firmware's about 1500).
            var last = (Width: 0, Height: 0, Lit: 0);
            const int BannerPixels = 8 * 42 * 16;
            await Eventually.UntilAsync(async () =>
            {
                var (mime, data) = await hypervisor.ScreenshotAsync(name);
                Assert.Equal("image/png", mime);
                last = ReadPng(data);
                // The last one seen, also when the text never comes, to look at.
                SaveForPeople(data, "real-guest-screen.png");
                return last.Lit >= BannerPixels;
            }, "the guest's text on its screen", TimeSpan.FromSeconds(120), () => $"{last}");
            Assert.True(last.Width >= 640 && last.Height >= 400, $"a {last.Width}x{last.Height} screen");
        }
        finally
        {
            RealLibvirtd.Remove(name);
        }
    }
}
