// A qube's serial console through libvirt (virDomainOpenConsole over a non-blocking stream) against a real guest that
// a real libvirtd runs: the lane's small guest has a shell on ttyS0. The test driver has no consoles (StreamTests).
using System.Text;
using System.Text.RegularExpressions;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealConsoleTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    private static readonly TimeSpan Boot = TimeSpan.FromSeconds(120);

    /// <summary>Everything a console pipe gives, as text, until it ends; Ended says how (0 bytes or an error).</summary>
    private sealed class Reader
    {
        private readonly StringBuilder _text = new();
        public Task Ended { get; }

        public Reader(StreamPipe pipe) => Ended = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            int n;
            while ((n = await pipe.ReadAsync(buffer)) > 0)
                lock (_text) _text.Append(Encoding.UTF8.GetString(buffer, 0, n));
        });

        public string Text
        {
            get { lock (_text) return _text.ToString(); }
        }
    }

    [Fact]
    public async Task The_serial_console_runs_a_command_in_the_guest_admits_one_viewer_unless_forced_and_ends_when_the_guest_stops()
    {
        _ = daemon; // started by the fixture
        var name = "qwt-console-" + Guid.NewGuid().ToString("N")[..10];
        using var connect = Connect.Open(RealLibvirtd.Uri);
        using var hypervisor = RealLibvirtd.OpenHypervisor();
        try
        {
            // The console's own domain XML gives the qube its serial console (the test guest adds only its kernel).
            using var domain = connect.DefineDomainXml(guest.DomainXml(name));
            Assert.Equal("pty", System.Xml.Linq.XDocument.Parse(domain.GetXmlDesc()).Root!.Element("devices")!.Element("console")?.Attribute("type")?.Value);
            domain.Create();

            using var first = hypervisor.OpenConsole(name);
            var reader = new Reader(first);
            // The guest's shell says when it holds ttyS0 (before that, the port drops what is typed).
            await Eventually.UntilAsync(() => reader.Text.Contains("test guest: shell on ttyS0"), "the shell on the serial console", Boot, () => reader.Text);

            // Typed as a user types it; the shell's answer, not the echo of the line typed (which says 6*7).
            await first.WriteAsync("echo $((6*7))\r"u8.ToArray());
            await Eventually.UntilAsync(() => Regex.IsMatch(reader.Text, @"(^|\n)42\r?\n"), "the shell on ttyS0 to answer 42", TimeSpan.FromSeconds(60), () => reader.Text);

            // A second viewer is refused, with the reason and the way out...
            var busy = Assert.Throws<ConsoleBusyException>(() => hypervisor.OpenConsole(name));
            Assert.Contains($"Someone else has the console of {name} open", busy.Message);
            // ...and taking it over ends the first viewer's stream.
            using var second = hypervisor.OpenConsole(name, force: true);
            await AssertEndsAsync(reader.Ended);
            var secondReader = new Reader(second);
            await second.WriteAsync("echo forced-$((40+2))\r"u8.ToArray());
            await Eventually.UntilAsync(() => secondReader.Text.Contains("forced-42"), "the shell to answer the new viewer", TimeSpan.FromSeconds(60), () => secondReader.Text);

            // A guest that stops ends its console's stream: a reader is not left waiting.
            domain.Destroy();
            await AssertEndsAsync(secondReader.Ended);
        }
        finally
        {
            RealLibvirtd.Remove(name);
        }
    }

    /// <summary>The reader's loop ended, by the end of the stream or by libvirt's error for it.</summary>
    private static async Task AssertEndsAsync(Task ended)
    {
        try
        {
            await ended.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (LibvirtException)
        {
            // An aborted stream reports libvirt's error to its reader: ended all the same.
        }
    }
}
