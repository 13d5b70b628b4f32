// Invisible format characters in free text are refused at every door that stores it: the inventory (whoever calls
// it) and the jobs' checks before queueing; each refusal writes nothing.
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Qubes;

namespace QubesWeb.IntegrationTests.InventoryTests;

public sealed class InvisibleTextTests : IAsyncLifetime
{
    private const string Spoof = "pay to vault\u202Egpj.exe";
    private TempInventory _store = null!;
    private QubesWeb.Data.Qubes.Inventory Inv => _store.Inventory;

    public async Task InitializeAsync() => _store = await TempInventory.CreateAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Fact]
    public async Task Notes_and_features_with_a_bidi_override_are_refused_by_the_inventory_and_nothing_is_written()
    {
        await Inv.CreateAsync(new NewQube("fedora-42", QubeClass.TemplateVM, "black"));
        await Inv.CreateAsync(new NewQube("work", QubeClass.AppVM, "blue", "fedora-42", Notes: "plain",
            Features: new Dictionary<string, string> { ["menu-name"] = "Work" }));

        var notes = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.UpdateAsync("work", new QubeChanges(Notes: Spoof, Label: "red")));
        Assert.Equal("Notes may not contain invisible formatting characters, which can make text and qube names display as something " +
                     "they are not; remove U+202E (right-to-left override) at character 13.", notes.Message);
        var feature = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.UpdateAsync("work",
            new QubeChanges(Features: new Dictionary<string, string?> { ["menu-name"] = "Wo\u200Brk" })));
        Assert.Contains("Invalid value for feature 'menu-name': A feature value may not contain invisible formatting characters", feature.Message);
        Assert.Contains("remove U+200B (zero width space) at character 3", feature.Message);

        var created = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.CreateAsync(new NewQube("mail", QubeClass.AppVM, "blue", "fedora-42",
            Features: new Dictionary<string, string> { ["menu-name"] = "\u2067Mail\u2069" })));
        Assert.Contains("U+2067 (right-to-left isolate) at character 1", created.Message);
        await Assert.ThrowsAsync<QubeRuleException>(() => Inv.CreateAsync(new NewQube("mail", QubeClass.AppVM, "blue", "fedora-42", Notes: Spoof)));

        var work = await Inv.GetAsync("work");
        Assert.Equal("plain", work.Notes);
        Assert.Equal("blue", work.Label.Name);
        Assert.Equal("Work", work.Feature("menu-name"));
        Assert.Null(await Inv.FindAsync("mail"));
    }

    [Fact]
    public async Task A_new_qube_whose_notes_carry_a_zero_width_character_is_refused_before_its_job_is_queued()
    {
        await using var host = await ConsoleHost.StartAsync();
        var jobs = host.Get<JobEngine>();
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        var jobsBefore = await db.Jobs.CountAsync();

        var create = await Assert.ThrowsAsync<QubeRuleException>(() => jobs.EnqueueAsync(JobKind.Create, "bank-2",
            new CreateQubeRequest(QubeClass.AppVM, "green", "fedora-42", null, Notes: "\uFEFFbank"), CancellationToken.None));
        Assert.Contains("remove U+FEFF (zero width no-break space) at character 1", create.Message);
        var clone = await Assert.ThrowsAsync<QubeRuleException>(() => jobs.EnqueueAsync(JobKind.Clone, "dev-tools",
            new CloneRequest(QubeClass.StandaloneVM, "fedora-42", "green", Notes: "dev\u202Dtools"), CancellationToken.None));
        Assert.Contains("remove U+202D (left-to-right override) at character 4", clone.Message);

        Assert.Equal(jobsBefore, await db.Jobs.CountAsync());
        Assert.Null(await host.Get<QubesWeb.Data.Qubes.Inventory>().FindAsync("bank-2"));
        Assert.False(Directory.Exists(Path.Combine(host.DataDir, "pool", "bank-2")));
        Assert.False(Directory.Exists(Path.Combine(host.DataDir, "pool", "dev-tools")));
    }
}
